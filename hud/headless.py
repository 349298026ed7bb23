"""The HUD in a real browser, for its tests and benchmark: `spymaster serve` in a child process
and Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from foundation.lake import Lake

CHROMIUM = Path("/usr/bin/chromium")
# WebGL2 runs on SwiftShader when there is no GPU; the rest keeps a headless browser quiet on
# a machine without network.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(lake: Lake) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`spymaster serve` on a free local port: its URL and process, stopped on exit."""
    command = [
        str(Path(sys.executable).with_name("spymaster")),
        "serve",
        "--lake",
        str(lake.root),
        "--port",
        str(free_port()),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("spymaster HUD on "):
            process.kill()
            raise RuntimeError(f"spymaster serve did not start: {line}{process.stderr.read()}")
        yield line.split()[3], process
    finally:
        process.terminate()
        process.wait(timeout=30)


def launch_chromium(playwright: Any) -> Any:
    """Headless Chromium from Debian's package (`apt-get install chromium`; `make test` and
    `make bench` install it)."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; "
            "`make test` does it)"
        )
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
