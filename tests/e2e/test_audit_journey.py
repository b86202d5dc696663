"""Issue 20 in a browser: a user's own digits with planted label errors and copies across splits, audited
on Explore's Issues tab; a click marks a suspect for relabelling, and after a reload the mark is there."""

from __future__ import annotations

import pytest

from tests.ui.test_audit_page import _digits_with_problems

from .conftest import wait_for_map

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _issues_tab(page) -> None:
    page.get_by_role("tab", name="Issues").click()
    page.get_by_text("Suspected label errors").first.wait_for(timeout=120_000)
    page.get_by_text("label issue score").first.wait_for(timeout=60_000)


def test_a_suspect_marked_for_relabelling_stays_marked_after_a_reload(app_server, browser, data_root, artifacts):
    url, _ = app_server
    manifest, flipped, _ = _digits_with_problems(data_root / "audit-digits")
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    page.get_by_label("Folder, archive or CSV/Parquet manifest").fill(str(manifest))
    page.get_by_label("Path prefix for the table's relative image paths (optional)").fill(str(manifest.parent))
    page.get_by_role("button", name="Use this path").click()
    page.get_by_text("303 images", exact=False).first.wait_for(timeout=60_000)
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    wait_for_map(page, 300_000)
    _issues_tab(page)
    assert "Ringed on the map: the suspected label errors the audit found" in page.content()
    first = page.locator("[class*='st-key-audit_mark_']").first
    sample = next(c for c in first.get_attribute("class").split() if c.startswith("st-key-audit_mark_"))
    # the most suspect sample is one of the planted errors (the class name spells its "." as "-")
    assert sample.removeprefix("st-key-audit_mark_") in [path.replace(".", "-") for path in flipped]
    first.get_by_role("radio", name="Relabel").click()
    page.get_by_text("1 relabelled", exact=False).wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "audit_issues_marked.png"), full_page=True)

    page.reload()
    wait_for_map(page, 120_000)
    _issues_tab(page)
    page.get_by_text("1 relabelled", exact=False).wait_for(timeout=60_000)
    mark = page.locator(f".{sample}")
    chosen = mark.get_by_role("radio", name="Relabel")
    assert chosen.get_attribute("aria-checked") == "true"
