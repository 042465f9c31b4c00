"""Error types. Every message names what the user can act on: file, row, column, field."""

from __future__ import annotations


class TierwiseError(Exception):
    """Base class: a problem the user can fix, with a message meant to be shown as is."""


class InputError(TierwiseError):
    """A file or value that cannot be read: names the file, and row/column where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file, self.row, self.column = file, row, column
        where = [
            part
            for part in (
                file,
                f"row {row}" if row is not None else None,
                f"column {column!r}" if column is not None else None,
            )
            if part
        ]
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.reason = message


class ExpressionError(TierwiseError):
    """A rule expression that does not parse or refers to unknown names.

    ``column`` is 1-based within the expression text.
    """

    def __init__(self, message: str, *, text: str, column: int | None = None) -> None:
        self.text, self.column, self.reason = text, column, message
        pointer = ""
        if column is not None:
            pointer = f"\n    {text}\n    {' ' * (column - 1)}^"
        super().__init__(f"{message}{pointer}")


class PolicyError(TierwiseError):
    """A policy file that is not valid: each problem names the line and the field."""

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems, self.source = problems, source
        head = f"{source}: " if source else ""
        super().__init__(head + "invalid policy\n" + "\n".join(f"  - {p}" for p in problems))


class WorkspaceError(TierwiseError):
    """A workspace that is missing, not initialised, or inconsistent."""


class RunNotFound(TierwiseError):
    """A run id (or 'latest') that does not exist."""


class ModelError(TierwiseError):
    """A customer-base model that cannot be fitted or used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
