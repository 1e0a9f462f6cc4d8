"""Headless Chromium for map tests (Debian chromium + chromium-driver, selenium)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--window-size=1200,900", "--lang=zh-CN")


def chromium():
    """A selenium driver on Debian's Chromium, or a skip saying what is missing."""
    from selenium import webdriver

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(binary).exists() and Path(driver).exists()):
        pytest.skip("Debian packages chromium and chromium-driver are not installed (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


def offline(driver) -> None:
    """Block every http(s) request from now on, as on an intranet PC without internet."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})


def requests(driver) -> list[str]:
    """The URLs the pages asked for since the last call (from Chromium's network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def open_map(driver, path: Path, timeout: float = 20.0) -> float:
    """Load a map file and wait until citygrid's layer has drawn; returns the seconds taken."""
    start = time.perf_counter()
    driver.get(path.resolve().as_uri())
    while time.perf_counter() - start < timeout:
        ready = driver.execute_script(
            "return !!(window.citygrid && window.citygrid.layers.length && window.citygrid.layers[0]._xy)")
        if ready:
            return time.perf_counter() - start
        time.sleep(0.05)
    raise AssertionError(f"{path.name} did not draw within {timeout} s")


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
