"""The architecture from the inventory (IRM #1, preparation: know the architecture): areas, sub-areas,
mobile segments, boundaries and the critical flows with their owners, as Markdown tables and as one SVG
drawing (``irm map``; the crisis report includes both).

Every name comes from the inventory and is escaped for where it lands (``safetext.md`` in Markdown,
XML escaping in the SVG): a hostile name stays text.
"""

from __future__ import annotations

from html import escape

from orchestrator.core.inventory import Host, Inventory
from orchestrator.core.safetext import md


def _kind(host: Host, short: bool = False) -> str:
    if host.boundary_kind == "cisco_ios":
        return "IOS" if short else "Cisco IOS access lists"
    return "nftables"


def _boundary(host: Host | None) -> str:
    return f"{host.name} ({host.address}, {_kind(host)})" if host else "none"


def markdown(inv: Inventory) -> str:
    lines = ["### Chokepoints", "", "| role | boundary |", "|---|---|"]
    soc = f"{inv.soc.name} ({inv.soc.address})" if inv.soc else "none"
    lines.append(f"| SOC (where every management path starts) | {md(soc)} |")
    lines += [f"| {role} | {md(_boundary(host))} |" for role, host in (("core", inv.core), ("Internet edge", inv.edge))]
    lines += ["", "### Areas", "", "| area | gateway | segment | kind | prefix | hosts | downtime cost per hour |",
              "|---|---|---|---|---|---|---|"]
    for area in inv.areas.values():
        gateway = md(_boundary(inv.hosts.get(area.gateway)))
        cost = f"{area.downtime_cost_per_hour:,.0f} {md(inv.costs.currency)}" \
            if area.downtime_cost_per_hour is not None else "not declared"
        for seg in area.segments:
            kind = "sub-area" if seg.kind == "sub_area" else "mobile (laptops, VPN)"
            lines.append(f"| {md(area.name)} | {gateway} | {md(seg.name)} | {kind} | {seg.prefix} | "
                         f"{len(seg.hosts)}: {md(', '.join(seg.hosts))} | {cost} |")
    lines += ["", "### Critical flows (kept open while their area is isolated, once validated)", ""]
    flows = [(a, f) for a in inv.areas.values() for f in a.critical_flows]
    if not flows:
        lines.append("None declared.")
    else:
        lines += ["| area | flow | from | to | ports | owner | validated |", "|---|---|---|---|---|---|---|"]
        for area, f in flows:
            validated = f"by {md(f.validated_by)} at {str(f.validated_at)[:19]}" if f.validated_by else \
                "NOT validated: containment cuts it"
            lines.append(f"| {md(area.name)} | {md(f.name)} | {md(', '.join(f.sources))} | "
                         f"{md(', '.join(f.destinations))} | {f.protocol}/{','.join(map(str, f.ports))} | "
                         f"{md(f.owner)} | {validated} |")
    return "\n".join(lines) + "\n"


def svg(inv: Inventory, scopes: bool = False) -> str:
    """Top to bottom: the Internet, the edge, the core with the SOC beside it, then one column per area:
    its gateway and its segments (mobile segments drawn dashed); critical flows listed under the areas.
    ``scopes``: each area's and segment's box carries ``data-scope`` (the area, or AREA/SEGMENT), so the
    live board can colour it by its posture."""
    col, box_w, gap = 230, 200, 30
    areas = list(inv.areas.values())
    width = max(len(areas) * col + 20, 900)
    mid = width / 2
    x0 = (width - len(areas) * col) / 2
    parts: list[str] = []

    def box(x: float, y: float, w: float, h: float, title: str, sub: str = "", dashed: bool = False,
            fill: str = "#eef1f4", scope: str | None = None) -> None:
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        mark = f' data-scope="{escape(scope, quote=True)}"' if scopes and scope else ""
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="4" fill="{fill}" '
                     f'stroke="#1b1f24"{dash}{mark}/>')
        parts.append(f'<text x="{x + w / 2:.0f}" y="{y + 16:.0f}" font-size="12" text-anchor="middle" '
                     f'font-weight="bold">{escape(title)}</text>')
        if sub:
            parts.append(f'<text x="{x + w / 2:.0f}" y="{y + 31:.0f}" font-size="10" text-anchor="middle">'
                         f'{escape(sub)}</text>')

    def line(x1: float, y1: float, x2: float, y2: float) -> None:
        parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#57606a"/>')

    box(mid - box_w / 2, 10, box_w, 38, "Internet", str(inv.internet.prefix) if inv.internet else "")
    if inv.edge:
        line(mid, 48, mid, 70)
        box(mid - box_w / 2, 70, box_w, 38, f"edge: {inv.edge.name}", f"{inv.edge.address}, {_kind(inv.edge)}",
            fill="#fde2e1")
    if inv.core:
        line(mid, 108, mid, 130)
        box(mid - box_w / 2, 130, box_w, 38, f"core: {inv.core.name}", f"{inv.core.address}, {_kind(inv.core)}",
            fill="#fde2e1")
    if inv.soc:
        line(mid + box_w / 2, 149, mid + box_w / 2 + gap, 149)
        box(mid + box_w / 2 + gap, 130, box_w * 0.8, 38, f"SOC: {inv.soc.name}", str(inv.soc.address),
            fill="#dff3e4")
    bottom = 200
    for i, area in enumerate(areas):
        x = x0 + i * col + (col - box_w) / 2
        gw = inv.hosts.get(area.gateway)
        line(mid, 168, x + box_w / 2, 200)
        box(x, 200, box_w, 52, area.name, f"gateway {gw.name} ({_kind(gw, short=True)})" if gw else "no gateway",
            fill="#fde2e1", scope=area.name)
        cost = f"downtime {area.downtime_cost_per_hour:,.0f} {inv.costs.currency}/h" \
            if area.downtime_cost_per_hour is not None else "downtime cost not declared"
        parts.append(f'<text x="{x + box_w / 2:.0f}" y="{245:.0f}" font-size="9" text-anchor="middle">'
                     f'{escape(cost)}</text>')
        y = 274
        spine, top = x + 8, 252
        for seg in area.segments:
            line(spine, top, spine, y + 26)
            top = y + 26
            line(spine, y + 26, spine + 12, y + 26)
            box(spine + 12, y, box_w - 20, 52, seg.name, f"{seg.prefix}, {len(seg.hosts)} host(s)",
                dashed=seg.kind == "mobile", scope=seg.qualified)
            parts.append(f'<text x="{spine + 12 + (box_w - 20) / 2:.0f}" y="{y + 45:.0f}" font-size="9" '
                         f'text-anchor="middle">{escape(", ".join(seg.hosts)[:40])}</text>')
            y += 74
        bottom = max(bottom, y)
    flows = [(a, f) for a in areas for f in a.critical_flows]
    for j, (area, f) in enumerate(flows):
        state = "validated" if f.validated_by else "NOT validated"
        parts.append(f'<text x="10" y="{bottom + 16 + j * 16}" font-size="10">critical flow {escape(area.name)}/'
                     f'{escape(f.name)}: {escape(", ".join(f.sources))} -&gt; {escape(", ".join(f.destinations))} '
                     f'{f.protocol}/{",".join(map(str, f.ports))}, owner {escape(f.owner)}, {state}</text>')
    height = bottom + 24 + 16 * len(flows)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            f'aria-label="architecture from the inventory" font-family="sans-serif">' + "".join(parts) + "</svg>\n")
