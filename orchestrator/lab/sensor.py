"""The lab's network sensor: what an IDS tap at a gateway would see, written as Suricata EVE alerts.

Run as ``python -m orchestrator.lab.sensor --config FILE`` inside a lab gateway's namespace (the lab
builder starts one per gateway). It reads every packet that enters the namespace from a raw
``AF_PACKET`` socket, as Suricata's af-packet capture does, before the gateway's firewall decides
anything, and only frames addressed to the gateway itself (routed traffic; the segments' switches live
in the gateway's namespace, and frames they switch between two hosts are not the gateway's). A TCP
segment to one of the worm's ports whose payload carries the worm's exploit marker is an alert: once
per connection, on the packet's way in. So the sensor alerts only on propagation that actually crossed
the gateway with a completed handshake (payload flows only after one); a connection the firewall drops
at its first SYN never carries a payload and is never alerted on, and traffic between two hosts of one
segment never reaches the gateway, exactly as for a real tap.

Standard library only. Each alert is one ``write`` of one line to a file opened with ``O_APPEND``, so
several sensors can share one EVE file without tearing lines.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import time
from datetime import UTC, datetime
from typing import Any

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_HOST = 0  # a frame addressed to this namespace: routed through the gateway, not switched past it
SIGNATURE_ID = 9000001  # the lab's local signature (Suricata reserves 9000000-9999999 for local rules)
FLOW_MEMORY = 120.0  # seconds a connection is remembered (alerted once)
STATS_EVERY = 30.0  # seconds between two stats records (Suricata writes event_type stats periodically)


def alert(sensor: str, iface: str, src: str, sport: int, dst: str, dport: int, flow_id: int) -> dict[str, Any]:
    """One EVE alert record with Suricata's documented fields."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"
    return {"timestamp": stamp, "flow_id": flow_id, "in_iface": iface, "event_type": "alert", "src_ip": src,
            "src_port": sport, "dest_ip": dst, "dest_port": dport, "proto": "TCP", "host": sensor,
            "alert": {"action": "allowed", "gid": 1, "signature_id": SIGNATURE_ID, "rev": 1,
                      "signature": "IRM-LAB lab worm exploit payload", "category": "A Network Trojan was detected",
                      "severity": 1}}


def stats(sensor: str, started: float, packets: int, alerts: int) -> dict[str, Any]:
    """An EVE stats record: the sensor is alive (what ``irm prepare`` checks a source's recency by)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"
    return {"timestamp": stamp, "event_type": "stats", "host": sensor,
            "stats": {"uptime": int(time.monotonic() - started), "capture": {"kernel_packets": packets},
                      "detect": {"alert": alerts}}}


def parse(frame: bytes, ports: set[int], marker: bytes) -> tuple[str, int, str, int] | None:
    """(src, sport, dst, dport) of an IPv4 TCP segment to a watched port carrying the marker, else None."""
    if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 6 or len(ip) < ihl + 20:
        return None
    total = struct.unpack_from("!H", ip, 2)[0]
    tcp = ip[ihl:total]
    sport, dport = struct.unpack_from("!HH", tcp, 0)
    if dport not in ports:
        return None
    payload = tcp[(tcp[12] >> 4) * 4:]
    if marker not in payload:
        return None
    return socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport


def run(cfg: dict[str, Any]) -> None:
    ports, marker = {int(p) for p in cfg["ports"]}, str(cfg["marker"]).encode()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    out = os.open(cfg["eve"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seen: dict[tuple[str, int, str, int], float] = {}
    flow_id = int(time.time() * 1000) & 0xFFFFFFFFFFFF
    started = last_stats = time.monotonic()
    packets = alerts = 0
    os.write(out, (json.dumps(stats(cfg["sensor"], started, 0, 0)) + "\n").encode())
    sock.settimeout(STATS_EVERY)
    while True:
        if time.monotonic() - last_stats >= STATS_EVERY:
            last_stats = time.monotonic()
            os.write(out, (json.dumps(stats(cfg["sensor"], started, packets, alerts)) + "\n").encode())
        try:
            frame, (iface, _, pkttype, _, _) = sock.recvfrom(65535)
        except TimeoutError:
            continue
        packets += 1
        if pkttype != PACKET_HOST:  # switched between two hosts of a segment, or on its way out
            continue
        key = parse(frame, ports, marker)
        now = time.monotonic()
        if key is None or now - seen.get(key, -FLOW_MEMORY) < FLOW_MEMORY:
            continue
        seen = {k: t for k, t in seen.items() if now - t < FLOW_MEMORY}
        seen[key] = now
        flow_id += 1
        alerts += 1
        line = json.dumps(alert(cfg["sensor"], iface, *key, flow_id=flow_id)) + "\n"
        os.write(out, line.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as fh:
        run(json.load(fh))


if __name__ == "__main__":
    main()
