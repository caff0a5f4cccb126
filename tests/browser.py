"""Pages as people see them: Debian's chromium, driven through Playwright.

``./scripts/test`` installs chromium (apt-get) and exports EDULEDGER_CHROMIUM. Without it
the tests fail loudly, unless EDULEDGER_SKIP_SERVICES=1 outside CI, where they skip (as
the PostgreSQL and anvil tests do). Every page a test opens is screenshotted into
``.artifacts/screenshots/`` (kept by CI as the test output), and the page fails the test
if a script errs, the content security policy refuses something, or a load fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest_services import REPO_ROOT, _missing

SCREENSHOTS = REPO_ROOT / ".artifacts" / "screenshots"

# No first-run dialogs, no calls home: a test run makes no request but the test's own.
_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]


def chromium_executable() -> str:
    """$EDULEDGER_CHROMIUM, else Debian's /usr/bin/chromium; fails (or skips) when neither."""
    for candidate in (os.environ.get("EDULEDGER_CHROMIUM", ""), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    _missing("chromium", "EDULEDGER_CHROMIUM is not set and /usr/bin/chromium is missing")
    raise AssertionError("unreachable")


@dataclass
class Seen:
    """A browser page and what went wrong on it (script errors, CSP refusals, failed loads)."""

    page: Any  # playwright.sync_api.Page
    problems: list[str] = field(default_factory=list)
    device: dict[str, Any] = field(default_factory=dict)  # the context's locale, size and zone

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '-', name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000, path  # a picture, not an empty file
        return path

    def text(self, selector: str = "body") -> str:
        return str(self.page.inner_text(selector))

    def assert_clean(self) -> None:
        assert not self.problems, self.problems


def _watched(browser: Any, *, locale: str, width: int, height: int, timezone: str) -> Seen:
    """A page in a fresh context (its own storage: another device) that records what goes wrong."""
    context = browser.new_context(locale=locale, timezone_id=timezone,
                                  viewport={"width": width, "height": height})
    seen = Seen(context.new_page(),
                device={"locale": locale, "width": width, "height": height, "timezone": timezone})

    def console(message: Any) -> None:
        # Failed loads are counted once, from their answers below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.problems.append(f"console: {message.text}")

    def answered(response: Any) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            seen.problems.append(f"{response.status} {response.url}")

    seen.page.on("console", console)
    seen.page.on("pageerror", lambda error: seen.problems.append(f"script: {error}"))
    seen.page.on("response", answered)
    return seen


def another_device(seen: Seen) -> Seen:
    """A second device in the same browser as `seen` (a new context: nothing shared with it),
    of the same size, locale and time zone."""
    return _watched(seen.page.context.browser, **seen.device)


@contextmanager
def browser_page(*, locale: str = "zh-CN", width: int = 480, height: int = 1000,
                 timezone: str = "Europe/London") -> Iterator[Seen]:
    """A fresh chromium (its own profile) with one page, a phone-sized window by default.
    The browser's time zone is not Beijing's, so a page that shows Beijing time shows it
    because the server said so, not because the browser happened to be in China."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=_ARGS)
        try:
            yield _watched(browser, locale=locale, width=width, height=height, timezone=timezone)
        finally:
            browser.close()
