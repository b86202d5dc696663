"""A real ``streamlit run app.py`` on a free local port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from benchmarks import server

ARTIFACTS = server.ROOT / "test-artifacts"
CHROMIUM = os.environ.get("EMBEDVIZ_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium package.")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        _BROWSERS.append(browser)
        yield browser
        _BROWSERS.remove(browser)
        browser.close()


@pytest.fixture(autouse=True)
def _close_the_tests_pages(request):
    """Close the browser contexts a test opened once it is done (after a failure's screenshots): left
    open, each keeps a live Streamlit session polling the server for the rest of the run."""
    if "browser" not in request.fixturenames:
        yield
        return
    browser = request.getfixturevalue("browser")
    before = set(browser.contexts)
    yield
    for context in browser.contexts:
        if context not in before:
            context.close()


@contextlib.contextmanager
def serve(home: Path, log_path: Path, env: dict[str, str] | None = None):
    """``streamlit run app.py`` with ``EMBEDVIZ_HOME=home`` (and ``env``) on a free port; yields its URL
    (:func:`benchmarks.server.serve`, which the benchmarks start the app with too)."""
    try:
        with server.serve(home, log_path, {"EMBEDVIZ_GC_FREEZE": "1", **(env or {})}) as url:
            yield url
    except server.ServerDidNotStart as exc:
        pytest.fail(str(exc))


_LOGS: list[Path] = []  # the servers' logs, whose last lines go into a failing test's report
_BROWSERS: list = []  # the session's browser, whose open pages a failing test screenshots


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for log in _LOGS:
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-40:]
                report.sections.append((f"streamlit log, last lines ({log})", "\n".join(tail)))
        report.sections.append(("open pages at the failure", _screenshot_open_pages(item.name)))


def _screenshot_open_pages(test: str, last: int = 2) -> str:
    """The ``last`` pages opened that are still open (the failing test's, as tests open their own), as
    ``test-artifacts/failed-TEST-N.png``; their addresses."""
    lines = []
    for browser in _BROWSERS:
        pages = [page for context in browser.contexts for page in context.pages][-last:]
        for i, page in enumerate(pages):
            try:
                path = ARTIFACTS / f"failed-{test}-{i}.png"
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(path), full_page=True, timeout=10_000)
                state = page.evaluate("() => document.querySelector('[data-testid=stApp]')"
                                      "?.getAttribute('data-test-script-state')")
                lines.append(f"{page.url} (script {state}): {path}")
            except Exception as exc:  # noqa: BLE001 -- a report of a failure must not fail itself
                lines.append(f"{page.url}: no screenshot ({type(exc).__name__})")
    return "\n".join(lines) or "none"


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """The one folder the test server shares ("Path on this server" reads nothing else)."""
    return tmp_path_factory.mktemp("shared-data")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, data_root):
    """The app as a user starts it, with an empty ``EMBEDVIZ_HOME`` and one shared data folder
    (:func:`data_root`); yields (url, home)."""
    home = tmp_path_factory.mktemp("embedviz-home")
    log = tmp_path_factory.mktemp("logs") / "streamlit.log"
    _LOGS.append(log)
    with serve(home, log, {"EMBEDVIZ_DATA_ROOTS": str(data_root)}) as url:
        yield url, home


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def wait_for_map(page, timeout_ms: int = 90_000) -> None:
    """Until a plotly figure has drawn its points (WebGL canvas or SVG points present)."""
    page.wait_for_selector(".js-plotly-plot", timeout=timeout_ms)
    page.wait_for_function(
        "() => { const p = document.querySelector('.js-plotly-plot');"
        " return p && p._fullData && p._fullData.length > 0"
        " && (p.querySelector('canvas') || p.querySelector('.point')); }",
        timeout=timeout_ms)
    page.wait_for_timeout(800)  # let WebGL finish painting before a screenshot


def wait_until_idle(page, timeout_ms: int = 90_000) -> None:
    """Until the page's script run has finished (Streamlit marks the app ``notRunning``), as a user sees
    a page that has stopped loading before they click on it."""
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
        " === 'notRunning'", timeout=timeout_ms)


def points_drawn(page) -> int:
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " return p._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0); }")


def upload_images(page, url: str, archive) -> None:
    """Data & model: upload ``archive`` as the images (25 files of make_image_folder) and use them."""
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Upload").click()
    uploader = page.locator("[data-testid='stFileUploader']", has_text="A .zip/.tar of class folders")
    uploader.locator("input[type='file']").set_input_files(str(archive))
    page.get_by_role("button", name="Use these images").click()
    page.wait_for_selector("text=25 images in 2 classes", timeout=60_000)
