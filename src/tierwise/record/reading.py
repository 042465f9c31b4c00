"""The narrow read interface that reports use: a workspace's runs, where their snapshots
are, the app database and the language. tierwise.workspace.Workspace provides it; a report
depends on this, not on the workspace, so that reports sit below the workspace."""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from tierwise.record.history import RunRecord


class RunReader(Protocol):
    """What a report reads of a workspace."""

    @property
    def appdb(self) -> sa.Engine: ...

    @property
    def language(self) -> str: ...

    def runs(self) -> list[RunRecord]: ...

    def run(self, run_id: int | None = None) -> RunRecord: ...

    def snapshot(self, record: RunRecord) -> str: ...
