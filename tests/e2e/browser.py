"""Headless Debian chromium driven by Playwright, and the gestures the designer needs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("MLPLATFORM_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """Where screenshots go: $MLPLATFORM_TEST_ARTIFACTS, else tests/e2e/artifacts (gitignored)."""
    folder = Path(os.environ.get("MLPLATFORM_TEST_ARTIFACTS") or REPO / "tests" / "e2e" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """The system chromium (never a downloaded one); root needs --no-sandbox."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, base_url: str, user: str, password: str) -> None:
    """Sign in through Airflow's own login page (the simple auth manager's form)."""
    page.goto(f"{base_url}/")
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"{base_url}/", timeout=60_000)


def drag_to(page: Any, source: Any, target: Any, *, dx: float = 0, dy: float = 0, steps: int = 12) -> None:
    """Press on ``source``'s centre, move in small steps to ``target``'s centre (+dx, dy), release.

    React Flow starts a connection or a node drag only after several pointer moves.
    """
    start = source.bounding_box()
    end = target.bounding_box()
    assert start and end, "drag source or target is not visible"
    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    x1, y1 = end["x"] + end["width"] / 2 + dx, end["y"] + end["height"] / 2 + dy
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
    page.mouse.up()
