"""Benchmark: what the live board (`irm serve`) costs the journal, with 0 to N browsers connected.

    .venv/bin/python bench/board.py [BROWSERS...]     (default 1 10 50 100; no root, no lab; about 2 minutes)

A journal holds an incident. For each configuration a writer in this process journals WRITES stages the
way the applier does (a stage row started, then ended with its postures and host rows: two write
transactions, WAL, synchronous=FULL), one every PERIOD seconds, and times each transaction. The baseline
is the same writes with no board at all. Then `irm serve` runs on the journal with N browsers connected
to its event stream (server-sent events; each one a plain HTTP/1.1 connection reading every push), and
the same writes are timed again. Reported per configuration: the median and 95th percentile of a write
transaction, its ratio to the baseline's, the snapshots the board built (one per change, whatever the
number of browsers), the pushes each browser received, and the median time from a write's commit to its
push reaching a browser. Asserts nothing (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.core.incident import IncidentSpec  # noqa: E402
from orchestrator.core.journal import Journal  # noqa: E402
from tests.browser import board  # noqa: E402

INVENTORY = ROOT / "inventories" / "lab"
WRITES = 60
PERIOD = 0.2


def _writes(journal: Path, stamps: list[float]) -> list[float]:
    """WRITES stages journaled one every PERIOD seconds; the time of each write transaction."""
    took = []
    with Journal(journal) as j:
        for i in range(WRITES):
            t0 = time.perf_counter()
            sid = j.stages.start(1, "containment", "hq", f"bench-{i}", "gw-hq", False, "bench")
            t1 = time.perf_counter()
            j.stages.record_hosts(sid, [{"host": "gw-hq", "status": "changed", "ok": 1, "changed": 1, "failed": 0,
                                         "unreachable": 0, "failures": []}])
            t2 = time.perf_counter()
            j.stages.end(sid, "done", postures={"hq": "internet_cut" if i % 2 else "isolated"})
            stamps.append(time.time())
            t3 = time.perf_counter()
            took += [t1 - t0, t3 - t2, t2 - t1]
            time.sleep(PERIOD)
    return took


async def _browser(port: int, received: list[tuple[float, int]], stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    await writer.drain()
    try:
        while not stop.is_set():
            try:
                line = await asyncio.wait_for(reader.readline(), 0.5)
            except TimeoutError:
                continue
            if not line:
                break
            if line.startswith(b"data: "):
                try:
                    n = len(json.loads(line[6:]).get("timeline", []))
                except ValueError:
                    continue  # a chunk boundary inside the line: not a whole snapshot
                received.append((time.time(), n))
    finally:
        writer.close()


def _browsers(port: int, n: int, stop: Any, results: Any) -> None:
    """N browsers until ``stop`` is set; puts what each received."""
    got: list[list[tuple[float, int]]] = [[] for _ in range(n)]

    async def run() -> None:
        done = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.1)
            done.set()
        await asyncio.gather(watch(), *(_browser(port, got[i], done) for i in range(n)))
    asyncio.run(run())
    results.put(got)


def _health(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/health", timeout=5) as r:
        return dict(json.load(r))


def _run(journal: Path, browsers: int) -> dict[str, float]:
    stamps: list[float] = []
    if browsers == 0:
        took = _writes(journal, stamps)
        return {"p50": statistics.median(took), "p95": statistics.quantiles(took, n=20)[-1]}
    with board(journal, INVENTORY) as url:
        port = int(url.rsplit(":", 1)[1])
        # the browsers in a process of their own: their parsing never takes the writer's interpreter lock
        ctx = multiprocessing.get_context("spawn")
        results: Any = ctx.Queue()
        stop = ctx.Event()
        clients = ctx.Process(target=_browsers, args=(port, browsers, stop, results), daemon=True)
        clients.start()
        time.sleep(3)  # every browser connected and given the first snapshot
        before = _health(url)
        took = _writes(journal, stamps)
        time.sleep(1.5)
        after = _health(url)
        stop.set()
        got: list[list[tuple[float, int]]] = results.get(timeout=60)
        clients.join(timeout=10)
    pushes = [len(g) for g in got]
    # the push that first shows each write: its arrival minus the write's commit (the first browser's view)
    lags = []
    for stamp in stamps:
        arrivals = [t for t, _ in got[0] if t >= stamp]
        if arrivals:
            lags.append(arrivals[0] - stamp)
    return {"p50": statistics.median(took), "p95": statistics.quantiles(took, n=20)[-1],
            "builds": after["builds"] - before["builds"], "pushes": statistics.median(pushes),
            "lag": statistics.median(lags) if lags else float("nan"), "connected": before["browsers"]}


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    sizes = [int(a) for a in argv] or [1, 10, 50, 100]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal.db"
        with Journal(journal) as j:
            j.incidents.open(IncidentSpec(worm="Bench.Worm", vectors=["tcp/4445"]), "bench")
        base = _run(journal, 0)
        rows.append((0, base))
        for n in sizes:
            rows.append((n, _run(journal, n)))
            print(n, rows[-1][1], flush=True)
        rows.append((-1, _run(journal, 0)))  # the baseline again: the spread between two runs of the same
    lines = [f"| browsers | write transaction, median | p95 | median / no board | snapshots built for {WRITES} "
             "stages | pushes per browser | write -> push, median |", "|---|---|---|---|---|---|---|"]
    for n, r in rows:
        if n <= 0:
            name = "no board (baseline)" if n == 0 else "no board, again (the spread between two runs)"
            lines.append(f"| {name} | {r['p50'] * 1000:.2f} ms | {r['p95'] * 1000:.2f} ms | "
                         f"{r['p50'] / base['p50']:.2f}x | | | |")
        else:
            lines.append(f"| {n} | {r['p50'] * 1000:.2f} ms | {r['p95'] * 1000:.2f} ms | {r['p50'] / base['p50']:.2f}x "
                         f"| {r['builds']:.0f} | {r['pushes']:.0f} | {r['lag'] * 1000:.0f} ms |")
    publish(markdown, "board", lines)


if __name__ == "__main__":
    main()
