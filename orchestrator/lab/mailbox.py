"""The lab's crisis-cell mailbox: an SMTP server (aiosmtpd) on the SOC's lab address that keeps every
message irm sends as one ``.eml`` file, so the notifications of a lab run can be read afterwards.

Run as ``python -m orchestrator.lab.mailbox --listen ADDRESS:PORT --dir DIR`` (``irm lab up`` starts
it). It accepts mail for any recipient and delivers nothing anywhere: the lab sends no mail out.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Mailbox:
    """aiosmtpd handler: each message to ``<dir>/<n>.eml`` (written whole, then renamed into place)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            n = len(list(self.dir.glob("*.eml"))) + 1
            tmp = self.dir / f".{n:05d}.tmp"
            rcpt = "".join(f"X-Envelope-To: {r}\r\n" for r in envelope.rcpt_tos).encode()
            tmp.write_bytes(rcpt + envelope.original_content)
            tmp.rename(self.dir / f"{n:05d}.eml")
        return "250 Message accepted for delivery"


def serve(address: str, port: int, directory: Path) -> Controller:
    controller = Controller(Mailbox(directory), hostname=address, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    address, _, port = args.listen.rpartition(":")
    controller = serve(address, int(port), Path(args.dir))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
