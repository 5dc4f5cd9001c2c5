"""Rich renderables for the CLI: the lab topology tree, infection tables, probe summaries."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from orchestrator.core.inventory import Host, Inventory
from orchestrator.lab.builder import Infection, LabStatus
from orchestrator.lab.traffic import ProbeResult


def _host_label(host: Host, st: LabStatus | None, prefix: str = "", suffix: str = "") -> Text:
    extras = [f"{s.name}:{s.port}" for s in host.services]
    label = Text(f"{prefix}{host.name} {host.address}")
    if extras:
        label.append(f" [{', '.join(extras)}]")
    if host.boundary_kind == "cisco_ios":
        label.append(" (Cisco IOS)")
    if host.vulnerable and host.kind == "area":
        label.append(" vulnerable")
    if host.runs_jobs:
        label.append(" execution node")
    if st is not None and st.up and host.name in st.hosts:
        hs = st.hosts[host.name]
        if not hs.namespace:
            label.append(" no namespace", style="red")
        elif not hs.sshd:
            label.append(" device down" if host.boundary_kind == "cisco_ios" else " sshd down", style="red")
        if hs.agent is False:
            label.append(" services down", style="red")
        if hs.infection:
            label.append(f" INFECTED since {hs.infection['since'][11:19]}", style="bold red")
    label.append(suffix)
    return label


def topology_tree(inv: Inventory, st: LabStatus | None = None) -> Tree:
    """The lab as irm sees it; docs/lab.md's topology diagram is this output."""
    title = f"lab {inv.lab.name}" if inv.lab else f"inventory {inv.source}"
    if st is not None:
        title += " (up)" if st.up else " (down)"
    tree = Tree(title)
    soc, core, edge = inv.soc, inv.core, inv.edge
    if soc is None or core is None:
        return tree
    top = tree.add(f"SOC {soc.name} {soc.address} (root namespace, runs irm)")
    core_node = top.add(_host_label(core, st, "core "))
    if edge is not None:
        edge_node = core_node.add(_host_label(edge, st, "edge "))
        if inv.internet:
            net = edge_node.add(f"internet {inv.internet.prefix}")
            for name in inv.internet.hosts:
                net.add(_host_label(inv.hosts[name], st))
    for gw in inv.gateways:
        areas = [a for a in inv.areas.values() if a.gateway == gw.name]
        gw_node = core_node.add(_host_label(gw, st, "gateway ", f" - area {', '.join(a.name for a in areas)}"))
        for area in areas:
            if area.execution_node:
                gw_node.add(f"plays run on {area.execution_node} (the SOC routes only to it)")
            for seg in area.segments:
                kind = "sub-area" if seg.kind == "sub_area" else "mobile"
                seg_node = gw_node.add(f"{kind} {seg.qualified} {seg.prefix}")
                for name in seg.hosts:
                    seg_node.add(_host_label(inv.hosts[name], st))
    return tree


def infections_table(found: list[Infection], started: datetime | None = None) -> Table:
    """Who infected whom, when: times relative to the first infection (or ``started``)."""
    table = Table(title=f"{len(found)} infected host(s)")
    for col in ("time (UTC)", "+s", "host", "sub-area", "infected by"):
        table.add_column(col, no_wrap=col != "infected by")
    origin = started or (datetime.fromisoformat(found[0].since) if found else None)
    for inf in found:
        when = datetime.fromisoformat(inf.since)
        delta = f"{(when - origin).total_seconds():.1f}" if origin else ""
        source = "seed" if inf.source_address == "seed" else f"{inf.source_host or '?'} ({inf.source_address})"
        table.add_row(when.strftime("%H:%M:%S.%f")[:-3], delta, inf.host, inf.segment or "-", source)
    return table


def probe_summary(results: list[ProbeResult]) -> Table:
    table = Table(title="connectivity matrix")
    for col in ("from", "service", "open", "closed"):
        table.add_column(col)
    rows: dict[tuple[str, str], Counter[bool]] = {}
    for r in results:
        rows.setdefault((r.probe.source, r.probe.service), Counter())[r.open] += 1
    for (src, svc), c in sorted(rows.items()):
        table.add_row(src, svc, str(c[True]), str(c[False]) if c[False] else "")
    return table
