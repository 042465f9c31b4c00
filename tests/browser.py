"""Headless Chromium for the end-to-end tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser builds are never downloaded (``playwright install`` fails on these
machines): ``scripts/test`` installs Debian's ``chromium`` and the CJK font
``fonts-wqy-microhei`` with apt-get, and the tests launch that binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = "apt-get install -y chromium fonts-wqy-microhei (scripts/test does it)"


def chromium_unavailable() -> str | None:
    """None when the browser can be launched, else why not (for skip and failure messages)."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing; install it with {INSTALL_HINT}"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not executable"
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless (the launcher's ``[: …: unexpected operator`` is harmless)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      headless=True)


def cjk_font_families() -> set[str]:
    """Font families fontconfig (and so Chromium) knows for Chinese; empty when none."""
    if shutil.which("fc-list") is None:
        return set()
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True,
                            text=True, check=False).stdout
    return {name.strip() for line in listed.splitlines() for name in line.split(",")
            if name.strip()}
