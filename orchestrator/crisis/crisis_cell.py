"""The crisis-cell directory (IRM #1, preparation: know who to call): load it, check it is complete and
fresh, and say who is told what.

Roles the cell needs: a crisis lead, the CISO and the external CERT; for each area its business owner
and its IT contact. An entry whose ``reviewed_at`` is older than ``max_age_days`` is stale.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import ValidationError

from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.model import AREA_ROLES, CELL_ROLES, Contact, CrisisCell
from orchestrator.core.safefile import PLAN_MAX, read_text_bounded
from orchestrator.core.yamlfile import safe_load


def load(inv: Inventory) -> tuple[CrisisCell | None, str | None]:
    """The directory and, when it cannot be used, why (one line naming the file and the entry)."""
    if inv.crisis_cell is not None:
        return inv.crisis_cell, None
    if inv.crisis_cell_file is None:
        return None, (f"no crisis-cell directory in {inv.source} (irm_crisis_cell, or irm_crisis_cell_file "
                      "naming a YAML file)")
    path = Path(inv.crisis_cell_file)
    try:
        data = safe_load(read_text_bounded(path, "crisis-cell directory", PLAN_MAX, "a YAML file"))
    except UserError as exc:
        return None, str(exc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, f"crisis-cell directory {path}{f':{mark.line + 1}' if mark else ''}: not valid YAML"
    try:
        cell = CrisisCell.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return None, f"crisis-cell directory {path}: {where or 'top level'}: {err['msg']}"
    unknown = sorted(set(cell.areas) - set(inv.areas))
    if unknown:
        return None, f"crisis-cell directory {path}: areas.{unknown[0]}: no such area in {inv.source}"
    return cell, None


def problems(inv: Inventory, cell: CrisisCell, today: date) -> list[str]:
    """Missing roles and stale entries, one line each, naming the role and the area."""
    out = []
    have = {c.role for c in cell.contacts}
    out += [f"crisis cell: no {role} (contacts: role {role}, name, email or phone, reviewed_at)"
            for role in CELL_ROLES if role not in have]
    for area in inv.areas:
        roles = {c.role for c in cell.areas.get(area, ())}
        out += [f"crisis cell: area {area} has no {role}" for role in AREA_ROLES if role not in roles]
    for where, contact in entries(cell):
        age = (today - contact.reviewed_at).days
        if age > cell.max_age_days:
            out.append(f"crisis cell: {where}{contact.role} {contact.name} was last reviewed {age} days ago "
                       f"({contact.reviewed_at}; more than {cell.max_age_days}): check the entry, then update "
                       "reviewed_at")
    return out


def entries(cell: CrisisCell) -> list[tuple[str, Contact]]:
    return [("", c) for c in cell.contacts] + [(f"area {a}: ", c) for a, cs in cell.areas.items() for c in cs]


def recipients(cell: CrisisCell, areas: list[str]) -> list[Contact]:
    """Who hears about these areas: the whole cell, and each area's own contacts; once each."""
    chosen = [*cell.contacts, *(c for a in areas for c in cell.areas.get(a, ()))]
    seen: set[str] = set()
    out = []
    for c in chosen:
        key = c.email or c.phone or c.name
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
