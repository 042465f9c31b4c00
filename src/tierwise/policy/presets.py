"""Built-in policies shipped with tierwise (ABC, RFM, pyramid, value tiers, automatic)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tierwise.errors import PolicyError

PRESETS = ("value-tiers", "abc", "rfm", "pyramid", "auto")


def policy_source(ref: str, *folders: Path) -> tuple[str, str]:
    """The YAML text a policy reference names, and where it came from.

    A reference is a file (absolute, or relative to the first of `folders` that has it, else
    to the current folder) or, when no such file exists, a preset name.
    """
    candidates = [Path(ref)] if Path(ref).is_absolute() else [f / ref for f in folders]
    candidates.append(Path(ref))
    for path in candidates:
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8"), str(path)
            except UnicodeDecodeError:
                raise PolicyError(["policy files must be UTF-8 text"], source=str(path)) from None
    if ref in PRESETS:
        return preset_text(ref), ref
    raise PolicyError([f"no policy file or preset named {ref!r}; presets: "
                       + ", ".join(PRESETS)])


def preset_text(name: str) -> str:
    if name not in PRESETS:
        raise PolicyError([f"no preset named {name!r}; presets: {', '.join(PRESETS)}"])
    return (resources.files("tierwise") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
