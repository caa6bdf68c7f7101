"""Headless Chromium for the page's tests: Debian's ``chromium`` driven by Selenium through
Debian's ``chromium-driver`` (no browser download). Missing browser: the tests fail, saying how
to install it (``make setup`` does), instead of being skipped."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import REPO

ARGUMENTS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,1000",
]


def artifacts() -> Path:
    """Where screenshots go (a CI job keeps this folder): $PROVISION_TEST_ARTIFACTS or ./test-artifacts."""
    folder = Path(os.environ.get("PROVISION_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def executables() -> tuple[str, str]:
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail(
            "headless Chromium is needed for the page's tests: apt-get install chromium chromium-driver "
            "(make setup does), or set CHROMIUM and CHROMEDRIVER"
        )
    return browser, driver


def start_chromium(profile: Path) -> webdriver.Chrome:
    browser, driver = executables()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in [*ARGUMENTS, f"--user-data-dir={profile}"]:
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


def fresh_profile() -> Path:
    return Path(tempfile.mkdtemp(prefix="chromium-profile-"))
