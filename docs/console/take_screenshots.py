"""Take the console screenshots of docs/console.md: headless Chromium at 1,400 px against a live demo.

uv run infrawatch demo            # note the console address and the viewer key it prints
uv run python docs/console/take_screenshots.py http://127.0.0.1:8000 VIEWER_KEY
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

PAGES = (
    ("overview", "/", False),
    ("target", "/targets/{target}", True),
    ("alerts", "/alerts", False),
    ("feeds", "/feeds", True),
)


def main(base: str, viewer_key: str, target: str = "", out: Path = Path(__file__).parent) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.goto(f"{base}/signin")
        page.fill("#key", viewer_key)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if not target:  # the first at-risk target, else the first card
            card = page.locator('article.card:has([data-status="at_risk"])').first
            target = (card if card.count() else page.locator("article.card").first).get_attribute("data-target") or ""
        for name, path, full_page in PAGES:
            page.goto(base + path.format(target=target))
            page.wait_for_load_state()
            width = page.evaluate("document.documentElement.scrollWidth")
            print(f"{name}: {path.format(target=target)} (page width {width} px)")
            page.screenshot(path=str(out / f"{name}.png"), full_page=full_page)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
