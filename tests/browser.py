"""The live board in a real browser: Debian's headless Chromium driven by selenium, and ``irm serve`` as a
process of its own on a free loopback port (stopped by its PID). ``python -m tests.browser shot`` is how
``make demo`` keeps a screenshot of the board."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def board(journal: Path, inventory: Path, *extra: str) -> Iterator[str]:
    """``irm serve`` on this journal; yields its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "irm"), "serve", "--port", str(port), "--journal",
                             str(journal), "-i", str(inventory), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"irm serve did not start: {proc.communicate()[0]}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1800) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: Any, script: str, timeout: float = 20.0) -> Any:
    """Run ``script`` in the page until it returns something true; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never satisfied: {script}")
        time.sleep(0.05)


def shot(url: str, out: Path) -> str:
    """A screenshot of the board at ``url`` once it drew a snapshot; returns the incident line."""
    with chromium() as driver:
        driver.get(url + "/")
        wait_until(driver, "return document.body.getAttribute('data-generated')")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, min(int(height) + 40, 6000))
        wait_until(driver, "return document.body.getAttribute('data-generated')")
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        return str(driver.find_element("id", "incident").text)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.browser")
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("shot", help="a screenshot of the live board irm serve shows at --url")
    s.add_argument("--url", required=True)
    s.add_argument("--out", type=Path, required=True)
    sub.add_parser("port", help="print a free loopback port")
    args = ap.parse_args()
    if args.what == "port":
        print(free_port())
        return
    line = shot(args.url.rstrip("/"), args.out)
    print(f"board screenshot in {args.out}: {line}")


if __name__ == "__main__":
    main()
