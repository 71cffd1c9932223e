"""The web page in a real browser: headless Chromium driven by Selenium against `talkinghead serve`.

Debian's chromium and chromium-driver (scripts/browser.sh installs them where it can); without them the tests are
skipped with that reason. One server process serves all tests of the module (the models load once, as for a user).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="needs Debian's chromium and chromium-driver (bash scripts/browser.sh)"),
]

SPEECH = "Hello there. This is my voice, and this is my face."


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: a temporary folder, or ``$TALKINGHEAD_SCREENSHOTS`` (the ones under docs/serve/
    were made with ``TALKINGHEAD_SCREENSHOTS=docs/serve``)."""
    folder = os.environ.get("TALKINGHEAD_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``talkinghead serve`` on a free local port; its URL once /api/v1/health answers."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "TALKINGHEAD_QUIET": "1"}
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "talkinghead", "serve", "--port", str(port)],
                                stdout=sink, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server stopped at start-up:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer within 120 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The astronaut as a PNG and a few seconds of espeak speech as a WAV, with its duration."""
    from skimage import data

    from talkinghead.audio.tts import synthesize
    from talkinghead.io.audio import save_wav
    from talkinghead.io.image import save_image

    folder = tmp_path_factory.mktemp("media")
    image = save_image(folder / "astronaut.png", data.astronaut())
    speech = synthesize(SPEECH).audio
    audio = save_wav(folder / "speech.wav", speech)
    return {"image": Path(image), "audio": Path(audio), "seconds": len(speech.samples) / speech.sample_rate}


def _browser(extra: tuple[str, ...] = ()) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1400", *extra):
        options.add_argument(flag)
    assert CHROMIUM is not None and DRIVER is not None
    options.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def _wait(driver: Any, condition: Any, seconds: float, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25).until(condition)
    except Exception as err:  # a TimeoutException with the page's state attached
        status = driver.execute_script("const s = document.querySelector('#status'); return s ? s.innerText : ''")
        pytest.fail(f"{what} did not happen within {seconds} s (status line: {status!r}): {err}")


def _upload(driver: Any, elem_id: str, path: Path) -> None:
    """Send a file to the hidden file input inside the Gradio component ``#elem_id``."""
    from selenium.webdriver.common.by import By

    field = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{elem_id} input[type=file]"), 30,
                  f"the file input of #{elem_id}")
    field[0].send_keys(str(path))


def test_the_page_generates_a_video_that_plays(server: str, media: dict[str, Any], shots: Path) -> None:
    """Upload the astronaut and a speech file, press Generate: the video element gets a video of the speech's
    length, and it plays (its clock advances)."""
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(server + "/")
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#generate"), 60, "the page loading")
        driver.save_screenshot(str(shots / "page.png"))
        _upload(driver, "portrait", media["image"])
        _upload(driver, "speech-audio", media["audio"])
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#speech-audio audio, #speech-audio .waveform, "
                                                "#speech-audio [data-testid='waveform-Audio']"),
              30, "the speech upload")
        driver.find_element(By.CSS_SELECTOR, "#generate").click()
        video = _wait(driver, lambda d: d.execute_script(
            "const v = document.querySelector('#video video');"
            "return v && v.src && v.readyState >= 1 && isFinite(v.duration) ? v : null"), 240, "a video appearing")
        duration = float(driver.execute_script("return arguments[0].duration", video))
        assert abs(duration - media["seconds"]) < 0.25, (duration, media["seconds"])
        driver.execute_script("arguments[0].muted = true; arguments[0].play()", video)
        _wait(driver, lambda d: d.execute_script("return arguments[0].currentTime", video) > 0.3, 20,
              "the video playing")
        driver.execute_script("arguments[0].pause(); arguments[0].currentTime = arguments[0].duration / 2", video)
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(1.0)
        driver.save_screenshot(str(shots / "page_result.png"))
    finally:
        driver.quit()


def test_the_example_runs_with_one_click(server: str) -> None:
    """One click on the page's example (the astronaut and the demo sentence) fills the inputs and generates."""
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(server + "/")
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#generate"), 60, "the page loading")
        example = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.tr-body [data-testid^='dataset-cell']"),
                        30, "the example")
        driver.execute_script("arguments[0].scrollIntoView()", example[0])
        example[0].click()
        _wait(driver, lambda d: d.execute_script(
            "const t = document.querySelector('#speech-text textarea'); return t && t.value.length > 10"), 30,
            "the example filling the text box")
        _wait(driver, lambda d: d.execute_script(
            "const v = document.querySelector('#video video');"
            "return v && v.src && v.readyState >= 1 && isFinite(v.duration) && v.duration > 3"), 240,
            "a video from the example")
    finally:
        driver.quit()


def test_the_live_page_answers_the_microphone(server: str, media: dict[str, Any], shots: Path) -> None:
    """The live page with Chromium's fake microphone playing the speech file: frames arrive while it speaks."""
    from selenium.webdriver.common.by import By

    driver = _browser(("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                       f"--use-file-for-fake-audio-capture={media['audio']}"))
    try:
        driver.get(server + "/live")
        _upload(driver, "live-portrait", media["image"])
        start = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#live-mic"), 30, "the live page")
        start[0].click()
        _wait(driver, lambda d: int(d.execute_script(
            "const c = document.querySelector('#live-count'); return c ? parseInt(c.innerText || '0') : 0")) >= 25,
            30, "25 live frames")
        _wait(driver, lambda d: d.execute_script("const i = document.querySelector('#live-frame');"
                                                 "return i && i.complete && i.naturalWidth > 0"), 10, "a live frame")
        # the face moves: frames 0.4 s apart differ (pixels read back through a canvas; a frame still loading
        # its picture is skipped)
        grab = ("const i = document.querySelector('#live-frame'); if (!i.complete || !i.naturalWidth) return null;"
                "const c = document.createElement('canvas');"
                "c.width = i.naturalWidth; c.height = i.naturalHeight; const g = c.getContext('2d');"
                "g.drawImage(i, 0, 0); return Array.from(g.getImageData(0, 0, c.width, c.height).data"
                ".filter((_, k) => k % 4 === 0));")
        changed = 0
        for _ in range(8):
            first = driver.execute_script(grab)
            time.sleep(0.4)
            second = driver.execute_script(grab)
            if first is not None and second is not None and len(first) == len(second):
                changed = max(changed, sum(abs(a - b) > 8 for a, b in zip(first, second, strict=True)))
        assert changed > 50, changed
        driver.save_screenshot(str(shots / "live.png"))
    finally:
        driver.quit()



def test_the_live_page_plays_a_file_and_ends_with_every_frame(server: str, media: dict[str, Any]) -> None:
    """"Play an audio file" on the live page: the file is sent as it plays, the face answers, and once it ends the
    server flushes: the page reports the end with one frame per 40 ms of the file."""
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(server + "/live")
        _upload(driver, "live-portrait", media["image"])
        _upload(driver, "live-audio", media["audio"])
        driver.find_element(By.CSS_SELECTOR, "#live-play").click()
        status = _wait(driver, lambda d: d.execute_script(
            "const s = document.querySelector('#live-status'); const t = s ? s.innerText : '';"
            "return t.startsWith('Done') || t.startsWith('Error') ? t : null"), 60, "the end of the file")
        assert status.startswith("Done"), status
        frames = int(status.split()[1])
        assert abs(frames - round(media["seconds"] * 25)) <= 1, (frames, media["seconds"])
        assert int(driver.execute_script("return parseInt(document.querySelector('#live-count').innerText)")) == frames
    finally:
        driver.quit()
