"""`irm report` after a full lab exercise: the timeline is the journal's, the durations and the cost
agree with the journal and the inventory by hand, the HTML renders in headless Chromium, and a canary
secret in the inventory's vault-encrypted variables appears nowhere irm writes.

The exercise runs on a copy of the lab inventory that adds a vault-encrypted variable (the canary)
and sets ANSIBLE_VAULT_PASSWORD_FILE for every irm command, as an operator with vaulted inventories
would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from tests.conftest import BIN, LAB_INVENTORY, ROOT, built_lab, irm
from tests.integration.lab_tools import approve_args, events, set_patched, stages

pytestmark = pytest.mark.lab

CANARY = "irm-canary-7f3c1d9e-secret"
CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Exercise:
    journal: Path
    inventory: Path
    out: Path
    env: dict[str, str]
    data: dict[str, Any]


def _events(journal: Path) -> list[tuple[int, str, str]]:
    return [(e["id"], e["time"], e["kind"]) for e in events(journal)]


def _first_cut(journal: Path) -> datetime:
    (cut,) = [st.detail["first_applied_at"] for st in stages(journal, "containment")
              if st.name == "internet_cut" and st.state == "done"]
    return datetime.fromisoformat(str(cut))


def _opened(journal: Path) -> datetime:
    with closing(Journal.reader(journal)) as j:
        return datetime.fromisoformat(j.incidents.get(1).opened_at)


def _time_of(journal: Path, kind: str) -> datetime:
    (at,) = [e["time"] for e in events(journal, kind)]
    return datetime.fromisoformat(at)


@pytest.fixture(scope="module")
def exercise(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exercise]:
    tmp = tmp_path_factory.mktemp("report")
    inventory = tmp / "inventory"
    shutil.copytree(LAB_INVENTORY, inventory)
    password = tmp / "vault-password"
    password.write_text("lab-vault-password\n")
    encrypted = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(password),
                                CANARY, "--name", "lab_canary_secret"], capture_output=True, text=True, check=True)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "x-ws11.yml").write_text("---\n" + encrypted.stdout)
    assert CANARY not in (inventory / "host_vars" / "x-ws11.yml").read_text()
    # irm's temporary files in a directory of this test's own: what is left there is irm's alone
    private_tmp = tmp / "tmp"
    private_tmp.mkdir()
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(password), "IRM_OPERATOR": "op-report", "IRM_INVENTORY": str(inventory),
           "TMPDIR": str(private_tmp)}
    journal = tmp / "journal.db"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return irm(*args, "--journal", str(journal), env=env, timeout=600)

    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        set_patched(inv, ["hq-erp", "hq-ws1", "hq-ws2", "x-ws21", "x-ws22", "y-ws11", "y-ws12", "y-ws21"], True)
        assert run("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445").returncode == 0
        irm("lab", "infect", "x-ws11", check=True)
        assert run("contain", "--area", "subsidiary-x", "--yes", "--quiet-window", "4").returncode == 0
        rem = run("remediate", "--area", "subsidiary-x", "--plan", str(ROOT / "plans" / "lab-worm.yml"), "--yes")
        assert rem.returncode in (0, 5), rem.stdout + rem.stderr
        states = json.loads(run("status", "--json").stdout)["areas"]["subsidiary-x"]["remediation"]
        for host, r in states.items():
            if r["state"] != "verified":
                irm("lab", "fix-by-hand", host, check=True)
                assert run("mark-manual", host, "--technician", "technician").returncode == 0
        assert run(*approve_args(load_inventory(LAB_INVENTORY))).returncode == 0
        rec = run("recover", "--area", "subsidiary-x", "--yes", "--soak", "1s", "--quiet-window", "3s")
        if rec.returncode == 2 and "detection(s)" in rec.stderr:  # a last detection inside the quiet window
            rec = run("recover", "--area", "subsidiary-x", "--yes", "--soak", "1s", "--quiet-window", "3s")
        assert rec.returncode == 0, rec.stdout + rec.stderr
        assert run("note", f"the vault canary {CANARY} must never show", "--operator", "crisis-lead",
                   "--kind", "wrong").returncode == 0
        assert run("action", "add", "Rehearse the exercise every quarter", "--owner", "SOC lead", "--react",
                   "RA6002", "--due", "2027-03-01").returncode == 0
    out = tmp / "report"
    rep = run("report", "--out", str(out))
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert not list(private_tmp.glob("irm-run-*"))  # no runner artifacts kept
    yield Exercise(journal=journal, inventory=inventory, out=out, env=env,
                   data=json.loads((out / "report.json").read_text()))


def test_the_timeline_is_the_journal_one_for_one(exercise: Exercise) -> None:
    timeline = exercise.data["timeline"]
    assert [(t["id"], t["time"], t["kind"]) for t in timeline] == _events(exercise.journal)
    md = (exercise.out / "report.md").read_text()
    html = (exercise.out / "report.html").read_text()
    for t in timeline:
        assert t["time"][:23] in md and t["time"][:23] in html
    tagged = {t["react"] for t in timeline if t["react"]}
    assert {"RA3101", "RA3102", "RA3108", "RA3001", "RA5104", "RA5101"} <= tagged
    assert "RA6001" in md and "RA6002" in md


def test_durations_agree_with_the_event_times(exercise: Exercise) -> None:
    j = exercise.journal
    opened, cut = _opened(j), _first_cut(j)
    remediated = max(datetime.fromisoformat(e["time"]) for e in events(j, "remediation_host")
                     if e["detail"]["state"] == "verified")
    got = exercise.data["areas"]["subsidiary-x"]["since_opened_s"]
    for key, at in (("first_cut", cut), ("spread_stopped", _time_of(j, "spread_stopped")),
                    ("remediated", remediated), ("recovered", _time_of(j, "recovery_finished"))):
        assert got[key] == round((at - opened).total_seconds(), 1), key
    assert got["first_cut"] < got["spread_stopped"] < got["remediated"] < got["recovered"]


def test_the_cost_is_the_formula_applied_by_hand(exercise: Exercise) -> None:
    j = exercise.journal
    opened, cut, recovered = _opened(j), _first_cut(j), _time_of(j, "recovery_finished")
    with closing(Journal.reader(j)) as journal:
        methods = {h: r["method"] for h, r in journal.remediation.of(1).items()}
    manual = sum(1 for m in methods.values() if m == "manual")
    automatic = len(methods) - manual
    # inventories/lab: subsidiary-x 5000/h; crisis cell 6 people at 120/h; 150 and 900 per host
    by_hand = ((recovered - cut).total_seconds() / 3600 * 5000 + (recovered - opened).total_seconds() / 3600 * 6 * 120
               + automatic * 150 + manual * 900)
    cost = exercise.data["cost"]
    assert cost["currency"] == "EUR" and cost["not_declared"] == []
    assert abs(cost["total"] - by_hand) < 0.05, (cost, by_hand)
    items = {line["item"]: line for line in cost["lines"]}
    assert items["downtime of subsidiary-x"]["inputs"]["cost_per_hour"] == 5000
    assert items["crisis cell"]["inputs"]["people"] == 6
    md = (exercise.out / "report.md").read_text()
    assert "hours x downtime cost per hour" in md and f"{cost['total']:,.2f} EUR" in md


def _render(page: Path, png: Path) -> list[str]:
    """Render ``page`` in headless Chromium to ``png``; return the console and resource errors it logged."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1280,3000",
             f"--screenshot={png}", page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Failed to load resource" in line]


def test_the_html_page_renders_in_headless_chromium_without_console_errors(exercise: Exercise,
                                                                          tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "chromium is installed by scripts/setup.sh"
    # the checker sees a console error when there is one (negative control)
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><body><script>console.error("broken page")</script></body></html>')
    assert any("broken page" in line for line in _render(broken, tmp_path / "broken.png"))

    page = exercise.out / "report.html"
    text = page.read_text()
    assert "<svg" in text and "<style>" in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in text and "src=" not in text and "<link" not in text  # self-contained, offline
    shot = exercise.out / "report.png"
    assert _render(page, shot) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_vault_canary_appears_nowhere(exercise: Exercise) -> None:
    for path in (exercise.out / "report.md", exercise.out / "report.html", exercise.out / "report.json"):
        assert CANARY not in path.read_text(), path
    # the note that quoted it (Markdown escapes the brackets: they show as typed)
    assert "\\[REDACTED\\]" in (exercise.out / "report.md").read_text()
    assert "[REDACTED]" in (exercise.out / "report.json").read_text()
    for path in exercise.journal.parent.glob("journal.db*"):
        assert CANARY.encode() not in path.read_bytes(), path
    # Ansible could decrypt it (the exercise ran with the vault password): the canary was live
    env = {**exercise.env, "PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    shown = subprocess.run([str(BIN / "ansible"), "-i", str(exercise.inventory), "x-ws11", "-m", "debug", "-a",
                            "var=lab_canary_secret"], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert CANARY in shown.stdout
