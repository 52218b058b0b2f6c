"""``genre serve`` in Firefox: headless Firefox ESR driven over Marionette, its own remote protocol.

The same page checks as the Chromium test (``test_serve_browser.py``), in the other engine the
page promises to work in: upload a real recording and read the top genre and the bar chart
(checked against the API's answer for the same file); record from Firefox's fake microphone
(``media.navigator.streams.fake``: MediaRecorder gives Ogg/Opus here, WebM/Opus in Chromium);
keyboard order; a phone-sized viewport.

Why Marionette and not Selenium: Selenium drives Firefox through geckodriver, which neither
Debian nor PyPI ships, and Selenium Manager would download it (these machines are offline).
geckodriver is itself a translator to Marionette, which Firefox serves when started with
``--marionette``; ``marionette-driver`` is Mozilla's Python client for it (PyPI, pure Python).

The browser is ``firefox-esr`` (or ``firefox``) on the PATH, or ``GENRE_FIREFOX``; without it the
tests are skipped with a message saying what is missing (``.ci/run`` installs Debian's
``firefox-esr``). Headless Firefox keeps its window at least 500 px wide, so the phone check
loads the page in a 390 x 844 iframe, whose viewport the page's CSS sees as the screen.
Screenshots go to the test's temporary folder (and to ``$GENRE_SERVE_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from serving import (
    CONTROLS,
    check_recording,
    check_result_then_error,
    keep,
    page_result,
    private_home,
    result_shown,
    upload_and_check,
    upload_clip,
)

marionette = pytest.importorskip(
    "marionette_driver.marionette", reason="the Firefox test needs marionette-driver (pip install -e '.[test]')"
)
httpx = pytest.importorskip("httpx")

from marionette_driver import errors  # noqa: E402
from marionette_driver.by import By  # noqa: E402
from marionette_driver.keys import Keys  # noqa: E402
from marionette_driver.wait import Wait  # noqa: E402

#: Preferences of the throw-away profile: a fake microphone granted without a prompt, no
#: first-run pages, no network traffic of its own.
PREFS = {
    "marionette.port": 0,  # replaced by a free port
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
}


def firefox_path() -> str:
    """The Firefox binary, or skip saying what is missing."""
    path = os.environ.get("GENRE_FIREFOX") or shutil.which("firefox-esr") or shutil.which("firefox")
    if not path or not (Path(path).is_file() and os.access(path, os.X_OK)):
        pytest.skip(
            f"no Firefox: {path or 'firefox-esr / firefox'} not found or not executable "
            "(install Debian's `firefox-esr`, as .ci/run does, or set GENRE_FIREFOX)"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = firefox_path()
    profile = tmp_path_factory.mktemp("firefox-profile")
    port = free_port()
    prefs = PREFS | {"marionette.port": port}
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()))
    log = open(profile / "firefox.log", "wb")
    proc = subprocess.Popen(
        [
            binary,
            "--headless",
            "--marionette",
            "--remote-allow-system-access",  # the phone test sets the tab's zoom from the browser's (chrome) context
            "--no-remote",
            "--profile",
            str(profile),
            "--window-size=1200,1000",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **private_home(tmp_path_factory.mktemp("firefox-home")), "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"},
    )
    client = marionette.Marionette(host="127.0.0.1", port=port)
    try:
        client.start_session(timeout=90)
    except Exception as exc:  # a browser that cannot start is a skip with its reason, never a pass
        proc.kill()
        proc.wait()
        log.close()
        tail = (profile / "firefox.log").read_text(errors="replace")[-300:]
        pytest.skip(f"headless Firefox ({binary}) could not be started: {str(exc).strip().splitlines()[0][:200]}; log: {tail}")
    client.timeout.page_load = 60
    client.timeout.script = 60
    yield client
    try:
        client.delete_session()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait(browser, timeout: float):
    return Wait(browser, timeout=timeout, interval=0.1, ignored_exceptions=(errors.NoSuchElementException,))


def open_page(browser, site) -> None:
    browser.set_window_rect(width=1200, height=1000)
    browser.navigate(site.url)
    wait(browser, 30).until(lambda m: m.execute_script("return document.body.dataset.ready") == "true")


def shown(browser, element_id: str) -> bool:
    return browser.find_element(By.ID, element_id).is_displayed()


def wait_result(browser, previous: str = "") -> dict:
    """Wait until a result is shown (its status line differs from ``previous``); the page's view of it."""
    wait(browser, 120).until(lambda m: result_shown(m, previous))
    assert not shown(browser, "error"), f"the page shows an error: {browser.find_element(By.ID, 'error').text}"
    return page_result(browser)


def screenshot(browser, path: Path) -> None:
    path.write_bytes(browser.screenshot(format="binary", full=True))
    assert path.stat().st_size > 1000
    keep(path)


def test_upload_a_real_recording_and_read_the_chart(browser, site, tmp_path):
    clip = upload_clip(tmp_path)
    open_page(browser, site)
    upload_and_check(browser, site, clip, wait_result)
    screenshot(browser, tmp_path / "serve-firefox.png")


def test_a_failed_upload_hides_the_previous_result_and_keeps_the_focus(browser, site, tmp_path):
    open_page(browser, site)
    check_result_then_error(browser, tmp_path, wait_result)


def test_record_from_the_microphone(browser, site):
    """MediaRecorder (Ogg/Opus in Firefox) -> decodeAudioData -> 16-bit WAV upload, with Firefox's fake microphone."""
    open_page(browser, site)
    before = browser.find_element(By.ID, "status").text
    rec = browser.find_element(By.ID, "record")
    rec.send_keys(Keys.ENTER)  # from the keyboard
    wait(browser, 20).until(lambda m: m.find_element(By.ID, "record").get_attribute("aria-pressed") == "true" or shown(m, "error"))
    assert not shown(browser, "error"), browser.find_element(By.ID, "error").text
    time.sleep(2.5)
    rec.send_keys(Keys.ENTER)
    check_recording(wait_result(browser, before))
    assert shown(browser, "playback")


def test_keyboard_reaches_every_control_in_order(browser, site):
    open_page(browser, site)
    browser.find_element(By.TAG_NAME, "h1").click()
    seen, outlines = [], {}
    for _ in range(12):
        browser.actions.sequence("key", "keyboard").key_down(Keys.TAB).key_up(Keys.TAB).perform()
        active = browser.get_active_element()
        seen.append(active.get_attribute("id") or active.tag_name)
        outlines[seen[-1]] = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    order = [x for x in seen if x in CONTROLS]
    assert order[:5] == list(CONTROLS), seen
    assert browser.find_element(By.ID, "record").get_attribute("aria-pressed") == "false"
    assert outlines["classify"] != "none" and outlines["record"] != "none", outlines  # a visible focus state, reached by Tab


def test_phone_sized_viewport(browser, site, tmp_path):
    """A phone's CSS viewport (390 px wide): nothing wider than the screen, every control within it.

    Headless Firefox keeps a window at least 500 px wide, so the page is zoomed in a 500 px window
    until its viewport is 390 CSS px (what the page's layout sees, as on a phone)."""
    browser.set_window_rect(width=500, height=1082)
    browser.navigate(site.url)
    set_zoom(browser, 500 / 390)
    try:
        wait(browser, 30).until(lambda m: m.execute_script("return document.body.dataset.ready") == "true")
        width, inner = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert 385 <= inner <= 395, inner
        assert width <= inner, f"the page is {width} px wide in a {inner} px viewport"
        for element_id in ("model", "file", "classify", "record"):
            right = browser.execute_script(f"return document.getElementById('{element_id}').getBoundingClientRect().right")
            assert 0 < right <= inner, (element_id, right)
        screenshot(browser, tmp_path / "serve-firefox-phone.png")
    finally:
        set_zoom(browser, 1.0)
        browser.set_window_rect(width=1200, height=1000)


def set_zoom(browser, zoom: float) -> None:
    """Firefox's page zoom of the current tab (needs ``--remote-allow-system-access``)."""
    with browser.using_context(browser.CONTEXT_CHROME):
        browser.execute_script("window.gBrowser.selectedBrowser.fullZoom = arguments[0]", script_args=[zoom])
