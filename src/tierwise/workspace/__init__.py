"""A workspace: one folder holding settings, the data store, run snapshots and the app database."""

from tierwise.workspace.handle import (
    CONFIG_NAME,
    CONFIG_TEMPLATE,
    Workspace,
    current_user,
    resolve_root,
)

__all__ = ["CONFIG_NAME", "CONFIG_TEMPLATE", "Workspace", "current_user", "resolve_root"]
