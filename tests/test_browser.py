"""The Space app in a real browser: `mamba-multimodal serve` on 127.0.0.1 with the demo's model (the shipped base),
driven by headless Chromium (Debian's `chromium`, through Playwright with executable_path, never a downloaded
browser): upload an easy-VQA test image, type its question, press Submit, read the answer. The page's answer must be
the one `mamba-multimodal evaluate vqa` generates for that image and question (`builders.generate_answers` with the
question prompt style, 8 new tokens, greedy).

    make test-browser          # installs gradio + playwright into .venv-space; Chromium: apt-get install chromium

Skipped where gradio, playwright or /usr/bin/chromium is missing, unless BROWSER_TEST_REQUIRED=1 (make test-browser).
SPACE_SCREENSHOT=docs/space.png keeps the page's screenshot there (the README's); SPACE_MODEL=FOLDER serves another
saved VLM-Mamba folder (the README's screenshot: the folder `make demo` writes).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from transformers import AutoModelForImageTextToText, AutoProcessor

from mamba_multimodal.training.builders import generate_answers
from mamba_multimodal.training.data import load_easy_vqa
from mamba_multimodal.training.demo import base_model_path
from mamba_multimodal.training.prompts import benchmark_prompts

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
# Headless as root on a machine without network: no sandbox (root), no GPU, no background connections.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
QUESTION_ROW = 0  # easy-VQA's first test question


def _missing() -> list[str]:
    missing = [name for name in ("gradio", "playwright") if not _importable(name)]
    return missing + ([CHROMIUM] if not Path(CHROMIUM).exists() else [])


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def browser_ready():
    missing = _missing()
    if missing and os.environ.get("BROWSER_TEST_REQUIRED"):
        pytest.fail(f"BROWSER_TEST_REQUIRED: missing {', '.join(missing)} (make test-browser installs them)")
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (make test-browser installs them)")


def served_folder() -> str:
    return os.environ.get("SPACE_MODEL") or str(base_model_path())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(browser_ready, tmp_path_factory):
    """`mamba-multimodal serve FOLDER --port P` in a subprocess: its URL, once the page answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    code = f"import sys; from mamba_multimodal_cli import main; sys.exit(main(['serve', {served_folder()!r}, " \
        f"'--port', '{port}']))"  # fmt: skip
    with log.open("w") as output:
        server = subprocess.Popen([sys.executable, "-c", code], stdout=output, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 180
            while True:
                assert server.poll() is None, f"serve exited: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"serve did not answer in 180 s: {log.read_text()[-3000:]}"
                try:
                    urllib.request.urlopen(url, timeout=5)
                    break
                except OSError:
                    time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def expected_answer(rows) -> str:
    """What `mamba-multimodal evaluate vqa --model FOLDER` generates for the one question of `rows`."""
    folder = served_folder()
    model, processor = AutoModelForImageTextToText.from_pretrained(folder), AutoProcessor.from_pretrained(folder)
    prompts = benchmark_prompts(processor, "vqa", "question", rows["question"])
    return generate_answers(model, processor, rows, prompts, max_new_tokens=8)[0]


def test_the_page_answers_what_evaluate_answers(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    rows = load_easy_vqa(("test",))["test"].select([QUESTION_ROW])
    row = rows[0]
    image_file = tmp_path / "question.png"
    row["image"].convert("RGB").save(image_file)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1100, "height": 760},
        )  # fmt: skip
        page = browser.new_page()
        page.goto(served)
        page.locator("input[type=file]").first.set_input_files(str(image_file))
        page.get_by_label("question").fill(row["question"])
        answer = page.get_by_label("answer")
        started = time.perf_counter()
        page.get_by_role("button", name="Submit").click()
        expect(answer).not_to_have_value("", timeout=30_000)
        seconds = time.perf_counter() - started
        shown = answer.input_value()
        page.screenshot(path=str(tmp_path / "space.png"), full_page=True)
        browser.close()
    if os.environ.get("SPACE_SCREENSHOT"):
        shutil.copyfile(tmp_path / "space.png", os.environ["SPACE_SCREENSHOT"])
    print(f"\nthe page answered {shown!r} to {row['question']!r} in {seconds:.2f} s (click to answer shown)")
    assert shown == expected_answer(rows)  # the time is printed, not asserted: a loaded machine decides it
