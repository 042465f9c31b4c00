"""Built-in policies shipped with tierwise (seed 001/003/004 models)."""

from __future__ import annotations

from importlib import resources

from tierwise.errors import PolicyError

PRESETS = ("value-tiers", "abc", "rfm", "pyramid")


def preset_text(name: str) -> str:
    if name not in PRESETS:
        raise PolicyError([f"no preset named {name!r}; presets: {', '.join(PRESETS)}"])
    return (resources.files("tierwise") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
