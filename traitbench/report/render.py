"""Check that a report renders in headless Chromium: take a screenshot and dump the DOM after load,
then verify the required sections exist, hold their plots, and that every embedded image decoded.

Chromium is found at $TRAITBENCH_CHROMIUM, at /usr/bin/chromium (or chromium-browser, google-chrome), on PATH
under those names, or as Playwright's bundled Chromium (`python -m playwright install chromium`); when none is
there, the error names the one command that installs it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from traitbench.errors import TraitbenchError

REQUIRED = ("heatmap", "bars", "provenance")  # section ids that must be present
WITH_PLOT = ("heatmap", "bars")  # sections that must contain a plot when their data exist
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


NAMES = ("chromium", "chromium-browser", "google-chrome")
FIXED = tuple(f"/usr/bin/{n}" for n in NAMES)  # found even with an empty PATH
APT_GET = "/usr/bin/apt-get"
# Playwright's browser builds: full Chromium (chrome-linux before 1.57, chrome-linux64 after), then headless shell
PLAYWRIGHT_GLOBS = ("chromium-*/chrome-linux*/chrome", "chromium_headless_shell-*/chrome-*/headless_shell",
                    "chromium_headless_shell-*/chrome-headless-shell-*/chrome-headless-shell")


def playwright_browsers() -> Path:
    """Where Playwright installs its browsers: $PLAYWRIGHT_BROWSERS_PATH, else ~/.cache/ms-playwright."""
    return Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")


def _revision(path: Path) -> int:
    digits = path.relative_to(playwright_browsers()).parts[0].rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else -1


def playwright_chromium() -> str | None:
    """Playwright's newest installed Chromium (or headless shell), or None."""
    root = playwright_browsers()
    for pattern in PLAYWRIGHT_GLOBS:
        found = [p for p in root.glob(pattern) if os.access(p, os.X_OK)]
        if found:
            return str(max(found, key=_revision))
    return None


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for cand in (os.environ.get("TRAITBENCH_CHROMIUM"), *FIXED):
        if cand and os.access(cand, os.X_OK):
            return cand
    for name in NAMES:
        if shutil.which(name):
            return shutil.which(name)
    return playwright_chromium()


def install_command(playwright: bool, apt: bool, root: bool) -> str:
    """The one command that installs a Chromium here: Playwright's when Playwright is installed (no root
    needed), else Debian/Ubuntu's package, else Playwright with its Chromium."""
    py = sys.executable
    if playwright:
        return f"{py} -m playwright install chromium"
    if apt:
        return ("" if root else "sudo ") + "apt-get install -y chromium"
    return f"{py} -m pip install playwright && {py} -m playwright install chromium"


def no_chromium_message() -> str:
    cmd = install_command(importlib.util.find_spec("playwright") is not None, Path(APT_GET).is_file(),
                          os.geteuid() == 0)
    return (f"no Chromium found (chromium, chromium-browser, google-chrome on PATH or in /usr/bin, Playwright's, or "
            f"$TRAITBENCH_CHROMIUM); install it with: {cmd}")


@dataclass
class RenderCheck:
    ok: bool
    screenshot: str
    sections: list[str] = field(default_factory=list)  # section ids found in the rendered DOM
    images: str = ""  # 'ok' when every <img> decoded, 'broken' otherwise
    image_count: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        state = "ok" if self.ok else "FAILED: " + "; ".join(self.problems)
        return (f"render check {state} — sections {', '.join(self.sections)}; {self.image_count} images "
                f"({self.images or 'unknown'}); screenshot {self.screenshot}")


def _chromium(binary: str, args: list[str], profile: str, timeout: int) -> subprocess.CompletedProcess:
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TraitbenchError(f"chromium did not finish within {timeout} s") from None


def _section(dom: str, sid: str) -> str | None:
    m = re.search(rf'<section[^>]*\bid="{re.escape(sid)}"[^>]*>(.*?)</section>', dom, re.S)
    return m.group(1) if m else None


def check_render(html_path: str | Path, screenshot: str | Path | None = None, window: str = "1400,9000",
                 timeout: int = 120) -> RenderCheck:
    """Render `html_path` headless: screenshot to `screenshot` (default: next to the HTML), DOM checks."""
    binary = find_chromium()
    if binary is None:
        raise TraitbenchError(no_chromium_message())
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise TraitbenchError(f"report not found: {html_path}")
    shot = Path(screenshot or html_path.with_name("report.png")).resolve()
    shot.parent.mkdir(parents=True, exist_ok=True)
    url = html_path.as_uri()
    with tempfile.TemporaryDirectory(prefix="traitbench-chromium-") as profile:
        _chromium(binary, [f"--screenshot={shot}", f"--window-size={window}", url], profile, timeout)
        dom = _chromium(binary, ["--dump-dom", url], profile, timeout).stdout
    found = re.findall(r'<section[^>]*\bid="([^"]+)"', dom)
    m_img = re.search(r'data-images="(\w+)"', dom)
    m_cnt = re.search(r'data-image-count="(\d+)"', dom)
    check = RenderCheck(ok=True, screenshot=str(shot), sections=found, images=m_img.group(1) if m_img else "",
                        image_count=int(m_cnt.group(1)) if m_cnt else 0)
    if not dom.strip():
        check.problems.append("chromium returned an empty DOM")
    for sid in REQUIRED:
        if sid not in found:
            check.problems.append(f"section #{sid} missing")
    for sid in WITH_PLOT:
        body = _section(dom, sid)
        if body is not None and "<img" not in body and "not run" not in body:
            check.problems.append(f"section #{sid} has neither a plot nor a 'not run' note")
    if check.images != "ok":
        check.problems.append(f"images did not all decode (data-images={check.images or 'absent'})")
    if not shot.is_file() or shot.stat().st_size == 0:
        check.problems.append("no screenshot written")
    check.ok = not check.problems
    return check
