"""``genre serve`` in a real browser: headless Chromium driven by Selenium.

Uploads a real recording from the shared music folder (a generated one in a checkout without
the shared data beside it), waits for the answer, and reads the
top genre and the bar chart from the page (checked against the API's own answer for the same
file); records from a fake microphone (Chromium's fake capture device playing a WAV made
here) and classifies the recording; checks keyboard order and a phone-sized viewport.

The browser is the system Chromium with its chromedriver, given explicitly (Selenium Manager
never downloads anything): ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` unless
``GENRE_CHROMIUM`` / ``GENRE_CHROMEDRIVER`` say otherwise. Without them the tests are
skipped with a message saying what is missing (``.ci/run`` installs Debian's ``chromium
chromium-driver``). Screenshots go to the test's temporary folder; with
``GENRE_SERVE_SCREENSHOTS=DIR`` they are also copied there (the README's come from
``GENRE_SERVE_SCREENSHOTS=docs``), ``GENRE_SERVE_MODEL=FILE`` serves that model instead of
the tiny one trained here, and ``GENRE_SERVE_CLIP=FILE`` uploads that file.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import synth
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

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install -e '.[test]')")
httpx = pytest.importorskip("httpx")

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
)


def browser_paths() -> tuple[str, str]:
    """The Chromium binary and its chromedriver, or skip saying which is missing."""
    chromium = os.environ.get("GENRE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = os.environ.get("GENRE_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = [p for p in (chromium, driver) if not (Path(p).is_file() and os.access(p, os.X_OK))]
    if missing:
        pytest.skip(
            f"no headless browser: {', '.join(missing)} not found or not executable "
            "(install Debian's `chromium chromium-driver`, as .ci/run does, or set GENRE_CHROMIUM / GENRE_CHROMEDRIVER)"
        )
    return chromium, driver


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory) -> Path:
    """The WAV Chromium's fake capture device plays (16-bit PCM, 48 kHz mono: what it accepts)."""
    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    sf.write(path, synth("high", 4.0, 48000, np.random.default_rng(7)), 48000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory, fake_mic):
    chromium, driver = browser_paths()
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*FLAGS, f"--use-file-for-fake-audio-capture={fake_mic}", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.add_argument("--window-size=1200,1000")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        env = {**os.environ, **private_home(tmp_path_factory.mktemp("chromium-home"))}
        drv = webdriver.Chrome(service=Service(executable_path=driver, env=env), options=opts)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium ({chromium}) could not be started: {str(exc).strip().splitlines()[0][:300]}")
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def open_page(browser, site) -> None:
    browser.set_window_size(1200, 1000)
    browser.get(site.url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")


def wait_result(browser, previous: str = "") -> dict:
    """Wait until a result is shown (its status line differs from ``previous``); the page's view of it."""
    WebDriverWait(browser, 120).until(lambda d: result_shown(d, previous))
    err = browser.find_element(By.ID, "error")
    assert not err.is_displayed(), f"the page shows an error: {err.text}; browser log: {browser.get_log('browser')}"
    return page_result(browser)


def test_upload_a_real_recording_and_read_the_chart(browser, site, tmp_path):
    clip = upload_clip(tmp_path)
    open_page(browser, site)
    upload_and_check(browser, site, clip, wait_result)
    # the whole page, then a phone-sized viewport on the result: nothing wider than the screen
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, height + 120)
    shot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(shot))
    keep(shot)
    browser.set_window_size(390, 844)
    time.sleep(0.5)  # the charts redraw for the new width
    browser.execute_script("document.getElementById('results').scrollIntoView()")
    width, inner = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width} px wide in a {inner} px viewport"
    bars_w = browser.execute_script("return document.getElementById('bars').getBoundingClientRect().width")
    assert 0 < bars_w <= inner
    shot = tmp_path / "serve-phone.png"
    assert browser.save_screenshot(str(shot))
    keep(shot)


def test_keyboard_reaches_every_control_in_order(browser, site):
    open_page(browser, site)
    from selenium.webdriver.common.action_chains import ActionChains

    browser.find_element(By.TAG_NAME, "h1").click()
    seen = []
    for _ in range(12):
        ActionChains(browser).send_keys(Keys.TAB).perform()  # to the page (send_keys to a file input would pick a file)
        seen.append(browser.switch_to.active_element.get_attribute("id") or browser.switch_to.active_element.tag_name)
    order = [x for x in seen if x in CONTROLS]
    assert order[:5] == list(CONTROLS), seen
    # the record button is a toggle announced as such, operable with the keyboard
    rec = browser.find_element(By.ID, "record")
    assert rec.get_attribute("aria-pressed") == "false"
    outline = browser.execute_script("var e=document.getElementById('classify'); e.focus(); return getComputedStyle(e).outlineStyle")
    assert outline != "none"  # a visible focus state


def test_a_failed_upload_hides_the_previous_result_and_keeps_the_focus(browser, site, tmp_path):
    open_page(browser, site)
    check_result_then_error(browser, tmp_path, wait_result)


def test_record_from_the_microphone(browser, site):
    """MediaRecorder (WebM/Opus) -> decodeAudioData -> 16-bit WAV upload, with Chromium's fake microphone."""
    open_page(browser, site)
    before = browser.find_element(By.ID, "status").text
    rec = browser.find_element(By.ID, "record")
    rec.send_keys(Keys.ENTER)  # from the keyboard
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "record").get_attribute("aria-pressed") == "true" or d.find_element(By.ID, "error").is_displayed()
    )
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text
    time.sleep(2.5)
    rec.send_keys(Keys.ENTER)
    check_recording(wait_result(browser, before))
    assert browser.find_element(By.ID, "playback").is_displayed()
