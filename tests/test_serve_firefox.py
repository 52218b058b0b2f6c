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

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED_DATA, synth
from serving import private_home, start

marionette = pytest.importorskip(
    "marionette_driver.marionette", reason="the Firefox test needs marionette-driver (pip install -e '.[test]')"
)
httpx = pytest.importorskip("httpx")

from marionette_driver import errors  # noqa: E402
from marionette_driver.by import By  # noqa: E402
from marionette_driver.keys import Keys  # noqa: E402
from marionette_driver.wait import Wait  # noqa: E402

CLIP = Path(os.environ.get("GENRE_SERVE_CLIP") or SHARED_DATA / "music-folder" / "misc" / "sorohanro_-_solo-trumpet-06.hq.ogg")
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


@pytest.fixture(scope="module")
def site(tmp_path_factory, request):
    model = os.environ.get("GENRE_SERVE_MODEL") or request.getfixturevalue("tiny_model")
    srv = start([model], tmp_path_factory.mktemp("serve-uploads"))
    yield srv
    srv.stop()


def keep(shot: Path) -> None:
    dest = os.environ.get("GENRE_SERVE_SCREENSHOTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(dest) / shot.name)


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

    def done(m):
        status = m.find_element(By.ID, "status").text
        return shown(m, "error") or (status.startswith("Result:") and status != previous)

    wait(browser, 120).until(done)
    assert not shown(browser, "error"), f"the page shows an error: {browser.find_element(By.ID, 'error').text}"
    bars = [
        (g.get_attribute("data-genre"), float(g.get_attribute("data-value"))) for g in browser.find_elements(By.CSS_SELECTOR, "#bars g.bar")
    ]
    return {
        "genre": browser.find_element(By.ID, "top-genre").text,
        "bars": bars,
        "cells": len(browser.find_elements(By.CSS_SELECTOR, "#timeline g.cells rect")),
        "rows": len(browser.find_elements(By.CSS_SELECTOR, "#windows-table tbody tr")),
        "meta": browser.find_element(By.ID, "result-meta").text,
        "status": browser.find_element(By.ID, "status").text,
    }


def screenshot(browser, path: Path) -> None:
    path.write_bytes(browser.screenshot(format="binary", full=True))
    assert path.stat().st_size > 1000
    keep(path)


def test_upload_a_real_recording_and_read_the_chart(browser, site, tmp_path):
    clip = CLIP
    if not clip.is_file():  # a checkout without the shared data beside it: a generated stereo Ogg instead
        clip = tmp_path / "generated.ogg"
        y = synth("low", 5.0, 44100, np.random.default_rng(3))
        sf.write(clip, np.stack([y, y], axis=1), 44100, format="OGG", subtype="VORBIS")
    open_page(browser, site)
    card = browser.find_element(By.ID, "card").text
    served = httpx.get(site.url + "api/models").json()["models"][0]["card"]
    assert served["architecture"] in card and "Measured accuracy" in card and "Test accuracy" in card
    top_k = int(browser.find_element(By.ID, "topk").get_attribute("value"))
    browser.find_element(By.ID, "file").send_keys(str(clip))
    browser.find_element(By.ID, "classify").click()
    page = wait_result(browser)
    with open(clip, "rb") as f:
        api = httpx.post(site.url + "api/predict", files={"file": (clip.name, f)}, data={"top_k": str(top_k)}, timeout=120).json()
    assert page["genre"] == api["genre"]
    assert page["bars"] == [(t["genre"], pytest.approx(t["probability"], abs=1e-6)) for t in api["top"]]
    assert len(page["bars"]) == min(top_k, len(api["probabilities"])) and page["bars"][0][0] == page["genre"]
    assert page["rows"] == api["n_windows"] and 0 < page["cells"] <= api["n_windows"] * top_k
    assert clip.name in page["meta"] and f"{api['n_windows']} windows" in page["meta"]
    screenshot(browser, tmp_path / "serve-firefox.png")


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
    page = wait_result(browser, before)
    assert "recording.wav" in page["meta"] and page["bars"] and page["genre"] == page["bars"][0][0]
    seconds = float(page["meta"].split(" · ")[1].split(" s ")[0])
    assert 1.5 <= seconds <= 10, page["meta"]
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
    order = [x for x in seen if x in ("model", "topk", "file", "classify", "record")]
    assert order[:5] == ["model", "topk", "file", "classify", "record"], seen
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
