"""The `tierwise` command line: a thin layer over `tierwise.workspace.Workspace`.

Results go to stdout (tables, JSON, CSV); progress and notes go to stderr, so
`tierwise grade --format json | jq` always sees exactly one JSON document.

`main` (the group) and what every command shares are in `common`; the commands are in one
module per stage, imported here so that they register on `main`.
"""

from __future__ import annotations

from tierwise.cli import data, grading, policy, reports, runs, server, work
from tierwise.cli.common import main

__all__ = ["data", "grading", "main", "policy", "reports", "runs", "server", "work"]

if __name__ == "__main__":
    main()
