"""The search page in a real browser (headless Chromium): type a query, upload an image (file
chooser and drag-and-drop), click "more like this", see the banner while the cluster is gone.
Screenshots of each step are saved under test-artifacts/browser/."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.webapp.browser import artifacts, fresh_profile, start_chromium
from tests.webapp.conftest import QUERIES, Served


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    profile = fresh_profile()
    driver = start_chromium(profile)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(browser: webdriver.Chrome, css: str, timeout: float = 30) -> WebElement:
    return WebDriverWait(browser, timeout).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def shot(browser: webdriver.Chrome, name: str) -> None:
    path = artifacts() / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    assert path.stat().st_size > 1000


def first_hit(browser: webdriver.Chrome) -> str:
    return wait(browser, "#results li.hit .name").text


def hit_names(browser: webdriver.Chrome) -> list[str]:
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#results li.hit .name")]


def thumbnails_loaded(browser: webdriver.Chrome) -> bool:
    return bool(
        browser.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
        )
    )


def test_type_a_query_and_see_red_circles_first(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/")
    box = wait(browser, "#text")
    assert browser.switch_to.active_element == box  # focus starts in the search box
    assert "84 images" in browser.find_element(By.CSS_SELECTOR, ".context").text
    box.send_keys("a red circle", Keys.ENTER)
    assert first_hit(browser).startswith("red-circle-")
    assert set(hit_names(browser)[:2]) == {"red-circle-000.jpg", "red-circle-001.jpg"}
    assert "Images matching “a red circle”" in browser.find_element(By.ID, "results-heading").text
    assert " ms" in browser.find_element(By.ID, "status").text  # the query's latency is shown
    WebDriverWait(browser, 30).until(thumbnails_loaded)
    shot(browser, "01-text-search")


def test_search_in_german_with_fewer_results(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/")
    wait(browser, "#text").send_keys("ein roter Kreis")
    k = browser.find_element(By.ID, "k")
    k.clear()
    k.send_keys("3")
    browser.find_element(By.ID, "text-search").click()
    assert first_hit(browser).startswith("red-circle-") and len(hit_names(browser)) == 3


def test_upload_an_image_with_the_file_chooser(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/")
    wait(browser, "#image").send_keys(str(QUERIES / "blue-star.jpg"))  # search starts on change
    WebDriverWait(browser, 30).until(lambda b: "Images like blue-star.jpg" in b.page_source)
    assert first_hit(browser).startswith("blue-star-")
    WebDriverWait(browser, 30).until(thumbnails_loaded)
    shot(browser, "02-image-upload")


def test_drop_an_image_on_the_page(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/")
    wait(browser, "#drop-zone")
    data = base64.b64encode((QUERIES / "red-circle.jpg").read_bytes()).decode()
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped-red-circle.jpg", {type: "image/jpeg"}));
        const zone = document.getElementById("drop-zone");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        """,
        data,
    )
    WebDriverWait(browser, 30).until(lambda b: "dropped-red-circle.jpg" in b.page_source)
    assert first_hit(browser).startswith("red-circle-")


def test_more_like_this(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/?text=a+red+circle&k=6")
    first = first_hit(browser)
    link = browser.find_element(By.CSS_SELECTOR, "#results li.hit .more-like-this")
    link.click()
    WebDriverWait(browser, 30).until(lambda b: "/similar/" in b.current_url)
    assert browser.find_element(By.ID, "results-heading").text == f"More like {first}"
    names = hit_names(browser)
    assert first not in names and names[0].startswith("red-circle-") and len(names) == 6  # k carried over
    WebDriverWait(browser, 30).until(thumbnails_loaded)
    shot(browser, "03-more-like-this")


def test_bad_upload_and_empty_results_are_explained(
    served: Served, browser: webdriver.Chrome, tmp_path: object
) -> None:
    from pathlib import Path

    notes = Path(str(tmp_path)) / "notes.jpg"
    notes.write_text("not really an image")
    browser.get(served.url + "/")
    wait(browser, "#image").send_keys(str(notes))
    assert "not an image" in wait(browser, "#error").text
    browser.get(served.url + "/?text=a+red+circle&min_score=0.999")
    assert "No image matched with a score of at least 0.999" in wait(browser, "#empty").text
    shot(browser, "04-empty")


def test_page_is_labelled_and_usable_by_keyboard(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/?text=a+red+circle")
    wait(browser, "#results")
    unlabelled = browser.execute_script(
        """
        return [...document.querySelectorAll('input, select')]
          .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length))
          .map(e => e.id || e.name);
        """
    )
    assert unlabelled == []
    alts = [img.get_attribute("alt") for img in browser.find_elements(By.CSS_SELECTOR, "img")]
    assert alts and all(alts)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link first
    assert browser.switch_to.active_element.text == "Skip to results"
    reached = []
    while len(reached) < 3 and browser.switch_to.active_element.get_attribute("id") != "text":
        browser.switch_to.active_element.send_keys(Keys.TAB)  # the heading's link, then the search box
        reached.append(browser.switch_to.active_element.get_attribute("id"))
    assert reached[-1] == "text", reached
    browser.switch_to.active_element.send_keys(Keys.CONTROL, "a")
    browser.switch_to.active_element.send_keys("a blue star", Keys.ENTER)
    WebDriverWait(browser, 30).until(
        lambda b: "“a blue star”" in b.find_element(By.ID, "results-heading").text
    )
    assert first_hit(browser).startswith("blue-star-")


def test_banner_while_the_cluster_is_stopped(served: Served, browser: webdriver.Chrome) -> None:
    served.proxy.cut()
    try:
        browser.get(served.url + "/?text=a+red+circle")
        banner = wait(browser, "#banner")
        assert banner.get_attribute("role") == "alert"
        assert "cannot reach Elasticsearch" in banner.text
        assert browser.find_elements(By.CSS_SELECTOR, "#results li.hit") == []
        shot(browser, "05-cluster-stopped")
    finally:
        served.proxy.restore()
    served.service.forget_health()
    browser.get(served.url + "/?text=a+red+circle")
    assert first_hit(browser).startswith("red-circle-")
    assert browser.find_elements(By.ID, "banner") == []
