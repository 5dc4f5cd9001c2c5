"""TCP reachability probe, run inside a lab namespace by ``traffic.run_probes``.

``python -m orchestrator.lab.probe TIMEOUT ADDR:PORT [ADDR:PORT ...]`` tries every target at once and
prints one JSON object ``{"ADDR:PORT": "open" | "refused" | "timeout" | "error"}``. A probe connects and
closes without sending anything, so it never triggers the lab worm's vulnerable service.
Standard library only; targets outside 198.18.0.0/15 are refused without a packet sent.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

LAB_SPACE = ipaddress.IPv4Network("198.18.0.0/15")


def probe(target: str, timeout: float) -> str:
    address, _, port = target.rpartition(":")
    if ipaddress.IPv4Address(address) not in LAB_SPACE:
        return "error"
    try:
        with socket.create_connection((address, int(port)), timeout=timeout):
            return "open"
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "error"


def main(argv: list[str]) -> None:
    timeout = float(argv[0])
    targets = argv[1:]
    with ThreadPoolExecutor(max_workers=min(64, max(1, len(targets)))) as pool:
        results = dict(zip(targets, pool.map(lambda t: probe(t, timeout), targets), strict=True))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
