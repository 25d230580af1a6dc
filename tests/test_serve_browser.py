"""The web page in a real browser: Debian's headless Chromium driven by Playwright, against
`pricer serve`'s app on loopback with the real default model (`expected`: a price and its
spread) and a MiniLM index of training items. Saves a screenshot (tmp dir and docs/images)."""

import shutil

import pytest

from browser import chromium, needs_chromium, served
from conftest import AMAZON_TEST, AMAZON_TRAIN, ROOT

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def server(default_model_dir):
    from pricer.data.items import read_items
    from pricer.predict.neighbours import Neighbours
    from pricer.predict.registry import make_predictor
    from pricer.serve.app import create_app

    llm = make_predictor("expected", model="default", precision="fp32", device="cpu")
    app = create_app(llm, examples=read_items(AMAZON_TEST)[:20],
                     neighbours=Neighbours(read_items(AMAZON_TRAIN, split="train")[:150]))
    with served(app) as url:
        yield url


def test_estimate_an_example_in_the_browser(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = chromium(p)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(server + "/")
        page.wait_for_function("document.querySelectorAll('#example option').length > 1")
        page.select_option("#example", index=3)
        assert page.input_value("#text").strip()
        assert page.inner_text("#actual").startswith("actual price: $")
        page.click("#go")
        page.wait_for_selector("#similar tr", timeout=120_000)
        page.wait_for_function("document.querySelector('#estimate').textContent.length > 0")
        estimate = page.inner_text("#estimate")
        spread = page.inner_text("#spread")
        rows = page.locator("#similar tr").count()
        page.fill("#text", "")
        page.click("#go")  # empty: a message, no request
        assert "Paste a description" in page.inner_text("#error")
        page.select_option("#example", index=3)
        page.click("#go")
        page.wait_for_function("!document.querySelector('#go').disabled")
        shot = tmp_path / "serve.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert estimate.startswith("$") and float(estimate[1:].replace(",", "")) > 0
    assert spread.startswith("likely between $")
    assert rows == 5
    assert shot.stat().st_size > 10_000
    (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ROOT / "docs" / "images" / "serve.png")
