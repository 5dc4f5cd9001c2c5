"""Draw irm's packages and their imports, from the code, as the SVG docs/architecture.md shows.

    python scripts/package_map.py [OUT]      (default: docs/packages.svg)

Each package of ``orchestrator/`` is a box with its modules, standing one floor above the highest
package it imports (``core`` on the ground); an arrow goes from a package to each one it imports,
lazy imports included. Only the structure is drawn (no line counts), so the picture changes exactly
when the packages or their imports do. ``tests/unit/test_docs_commands.py`` draws it again and fails when the committed
picture differs: it cannot go stale.
"""

from __future__ import annotations

import ast
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orchestrator"
WIDTH, BOX_W, BOX_H, FLOOR_H, MARGIN = 960, 150, 46, 90, 20


def packages() -> dict[str, tuple[int, set[str]]]:
    """Each top-level package: how many modules it has and the other packages it imports."""
    names = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    out: dict[str, tuple[int, set[str]]] = {}
    for name in names:
        modules, deps = 0, set()
        for path in sorted((PACKAGE / name).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            modules += path.name != "__init__.py"
            for node in ast.walk(ast.parse(text)):
                found = [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    else [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for module in found:
                    parts = module.split(".")
                    if parts[0] == "orchestrator" and len(parts) > 1 and parts[1] in names and parts[1] != name:
                        deps.add(parts[1])
        out[name] = (modules, deps)
    return out


def floors(graph: dict[str, tuple[int, set[str]]]) -> dict[str, int]:
    level: dict[str, int] = {}

    def of(name: str, seen: tuple[str, ...] = ()) -> int:
        if name not in level:
            deps = [d for d in graph[name][1] if d not in seen]
            level[name] = 1 + max((of(d, (*seen, name)) for d in deps), default=-1)
        return level[name]

    for name in graph:
        of(name)
    return level


def svg() -> str:
    graph = packages()
    level = floors(graph)
    top = max(level.values())
    height = (top + 1) * FLOOR_H + 2 * MARGIN
    where: dict[str, tuple[float, float]] = {}
    for f in range(top + 1):
        row = sorted(n for n in graph if level[n] == f)
        gap = (WIDTH - 2 * MARGIN - len(row) * BOX_W) / (len(row) + 1)
        for i, name in enumerate(row):
            x = MARGIN + gap * (i + 1) + BOX_W * i
            y = MARGIN + (top - f) * FLOOR_H
            where[name] = (x, y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">',
             '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>',
             f'<rect width="{WIDTH}" height="{height}" fill="white"/>']
    for name in sorted(graph):
        x, y = where[name]
        deps = sorted(graph[name][1], key=lambda d: (where[d][0], d))
        for i, dep in enumerate(deps):
            dx, dy = where[dep]
            x1, y1 = x + BOX_W * (i + 1) / (len(deps) + 1), y + BOX_H
            x2, y2 = dx + BOX_W / 2, dy
            span = level[name] - level[dep]
            if span > 1:  # past the floors between: bend around their boxes, to the side the target lies
                side = -1 if x2 < x1 or (x2 == x1 and i % 2 == 0) else 1
                cx = (x1 + x2) / 2 + side * (BOX_W * 0.9 + 30 * span)
                parts.append(f'<path d="M{x1:.0f},{y1:.0f} Q{cx:.0f},{(y1 + y2) / 2:.0f} {x2:.0f},{y2:.0f}" '
                             'fill="none" stroke="#889" stroke-width="1.2" marker-end="url(#a)"/>')
            else:
                parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#889" '
                             'stroke-width="1.2" marker-end="url(#a)"/>')
    for name in sorted(graph):
        x, y = where[name]
        modules = graph[name][0]
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#e8eef8" '
                     'stroke="#335"/>')
        parts.append(f'<text x="{x + BOX_W / 2:.0f}" y="{y + 20:.0f}" text-anchor="middle" font-weight="bold">'
                     f'{escape(name)}/</text>')
        parts.append(f'<text x="{x + BOX_W / 2:.0f}" y="{y + 37:.0f}" text-anchor="middle" fill="#445">'
                     f'{modules} modules</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "packages.svg"
    out.write_text(svg(), encoding="utf-8")
    print(f"wrote {out}")
