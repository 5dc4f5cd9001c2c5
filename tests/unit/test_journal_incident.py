"""The journal (SQLite, WAL) and `irm incident` through the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.core.errors import UserError
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.journal import Journal, proc_start
from tests.conftest import irm


def test_journal_is_wal_private_and_survives_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    code = (f"from orchestrator.core.journal import Journal\nfrom orchestrator.core.incident import IncidentSpec\n"
            f"j = Journal({str(path)!r})\ni = j.incidents.open(IncidentSpec(worm='W', vectors=['tcp/1']), 'op')\n"
            f"j.timeline.add(i.id, 'containment_failed', 'op', reason='kept')\nimport os; os._exit(9)\n")
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == 9  # died without closing anything
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with Journal(path) as j:
        assert j.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [e["kind"] for e in j.timeline.of(1)] == ["incident_opened", "containment_failed"]


def test_open_incident_for(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        with pytest.raises(UserError, match="no open incident in journal"):
            j.incidents.open_for(None)
        a = j.incidents.open(IncidentSpec(worm="A", vectors=["tcp/1"]), "op")
        assert j.incidents.open_for(None).id == a.id
        j.incidents.open(IncidentSpec(worm="B", vectors=["tcp/2"]), "op")
        with pytest.raises(UserError, match=r"several open incidents \(1, 2\).*--incident ID"):
            j.incidents.open_for(None)
        with pytest.raises(UserError, match="no incident 7"):
            j.incidents.open_for(7)


def _hold(j: Journal, area: str, pid: int, hostname: str, pid_start: str | None) -> None:
    j.db.execute("INSERT INTO locks(area, incident_id, pid, hostname, operator, since, token, pid_start) "
                 "VALUES (?, 1, ?, ?, 'alice', '2026-11-26T00:00:00', 'run-a', ?)", (area, pid, hostname, pid_start))


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            _hold(j, "x", holder.pid, os.uname().nodename, proc_start(holder.pid))
            expected = rf"area 'x' is locked by a running irm \(pid {holder.pid}, operator alice"
            with pytest.raises(UserError, match=expected):
                j.locks.acquire("x", 1, "bob")
        finally:
            holder.kill()
            holder.wait()
        j.locks.acquire("x", 1, "bob")  # the holder is gone: taken over, and journaled
        assert j.db.execute("SELECT operator FROM locks").fetchone()[0] == "bob"
        assert j.db.execute("SELECT count(*) FROM events WHERE kind='lock_taken_over'").fetchone()[0] == 1
        j.locks.release("x")
        assert j.db.execute("SELECT count(*) FROM locks").fetchone()[0] == 0


def test_lock_from_another_machine_or_a_reused_pid(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        # another machine's process cannot be checked from here: never taken over silently
        _hold(j, "x", 1, "other-host", "42")
        with pytest.raises(UserError, match=r"pid 1 on other-host.*irm unlock x --reason TEXT"):
            j.locks.acquire("x", 1, "bob")
        j.locks.unlock("x", "the other SOC laptop crashed", "bob")
        j.locks.acquire("x", 1, "bob")
        (detail,) = j.db.execute("SELECT detail FROM events WHERE kind='lock_released_by_operator'").fetchone()
        assert json.loads(detail)["reason"] == "the other SOC laptop crashed"
        # a live pid whose start time differs from the recorded one is another process (pid reused)
        _hold(j, "y", 1, os.uname().nodename, "1")  # pid 1 is alive, but did not start at tick 1
        j.locks.acquire("y", 1, "bob")
        assert j.db.execute("SELECT operator FROM locks WHERE area='y'").fetchone()[0] == "bob"


def test_lock_waits_for_its_holder(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    Journal(db).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from orchestrator.core.journal import Journal
        j = Journal({str(db)!r})
        j.locks.acquire("*boundaries", None, "alice")
        print("held", flush=True)
        time.sleep(1.5)
        j.locks.release("*boundaries")
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with Journal(db) as j:
            with pytest.raises(UserError, match="the shared boundaries are locked by a running irm"):
                j.locks.acquire("*boundaries", None, "bob")
            j.locks.acquire("*boundaries", None, "bob", wait=20)  # granted once alice releases it
            assert j.locks.held()[0]["operator"] == "bob"
    finally:
        holder.kill()
        holder.wait()


def test_incident_open_from_flags_and_file(tmp_path: Path) -> None:
    db = str(tmp_path / "j.db")
    out = irm("incident", "open", "--worm", "WannaCry", "--vector", "tcp/445", "--vector", "tcp/139",
              "--signature", "Ransom:Win32/WannaCrypt", "--reference", "MS17-010", "--journal", db, check=True)
    assert out.stdout.startswith("incident 1 opened: WannaCry, vectors tcp/445, tcp/139")
    spec = tmp_path / "worm.yml"
    spec.write_text("worm: Conficker\nvectors: [tcp/445]\nreferences: [KB958644, CVE-2008-4250]\n")
    irm("incident", "open", "--file", str(spec), "--journal", db, check=True)
    rows = json.loads(irm("incident", "list", "--json", "--journal", db, check=True).stdout)
    assert [(r["id"], r["worm"], r["status"]) for r in rows] == [(1, "WannaCry", "open"), (2, "Conficker", "open")]
    assert rows[0]["vectors"] == [{"protocol": "tcp", "port": 445}, {"protocol": "tcp", "port": 139}]
    kinds = dict(sqlite3.connect(db).execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    # each opening told the crisis cell, or journaled why it could not (the lab's mailbox is down here)
    assert kinds.pop("incident_opened") == 2 and sum(kinds.values()) == 2
    assert set(kinds) <= {"notified", "notify_failed"}


@pytest.mark.parametrize(("args", "message"), [
    (["--worm", "W"], "irm: error: incident: at least one --vector (tcp/PORT or udp/PORT) is required"),
    (["--worm", "W", "--vector", "445"],
     "irm: error: incident flags: key 'vectors': '445' is not a vector (expected tcp/PORT or udp/PORT, e.g. tcp/445)"),
    (["--worm", "W", "--vector", "tcp/445", "--reference", "see-website"],
     "irm: error: incident flags: key 'references': 'see-website' is not a CVE-YYYY-NNNN, KBnnnnnn, MSyy-nnn id "
     "or an http(s) URL"),
])
def test_incident_open_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    proc = irm("incident", "open", *args, "--journal", str(tmp_path / "j.db"))
    assert proc.returncode == 2 and proc.stderr.strip() == message


def test_incident_file_errors_name_file_and_key(tmp_path: Path) -> None:
    spec = tmp_path / "worm.yml"
    spec.write_text("worm: W\nvectors: [tcp/445]\ncolour: red\n")
    proc = irm("incident", "open", "--file", str(spec), "--journal", str(tmp_path / "j.db"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"irm: error: {spec}: key 'colour': Extra inputs are not permitted"
    spec.write_text("worm: [unclosed\n")
    proc = irm("incident", "open", "--file", str(spec), "--journal", str(tmp_path / "j.db"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"irm: error: {spec}:2: not valid YAML")


def test_read_only_commands_never_create_a_journal(tmp_path: Path) -> None:
    journal = tmp_path / "nothing-here.db"
    for args in (["status"], ["incident", "list"]):  # before the first incident: said, exit 0
        proc = irm(*args, "--journal", str(journal))
        assert proc.returncode == 0 and proc.stdout.startswith("no incident yet"), proc.stderr
    for args in (["contain", "--area", "hq", "--yes"], ["note", "x"]):  # these need an incident: refused
        proc = irm(*args, "--journal", str(journal))
        assert proc.returncode == 2
        assert proc.stderr.strip() == (f"irm: error: no journal at {journal} (open an incident first, or pass "
                                       "--journal / IRM_JOURNAL)")
    assert not journal.exists()


def test_the_default_journal_does_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "IRM_JOURNAL"} | {"IRM_STATE_DIR": str(state)}
    irm_bin = Path(sys.executable).parent / "irm"
    for i, where in enumerate(("a", "b")):
        (tmp_path / where).mkdir()
        subprocess.run([str(irm_bin), "incident", "open", "--worm", f"W{i}", "--vector", "tcp/445"],
                       cwd=tmp_path / where, env=env, check=True, capture_output=True)
    out = subprocess.run([str(irm_bin), "incident", "list", "--json"], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert [r["worm"] for r in json.loads(out)] == ["W0", "W1"]  # one journal for both operators
    assert stat.S_IMODE(state.stat().st_mode) == 0o700 and (state / "journal.db").exists()
    assert not list((tmp_path / "a").iterdir()) and not list((tmp_path / "b").iterdir())


def test_thirty_first_uses_of_a_new_journal_at_once_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    script = textwrap.dedent(f"""
        import sys
        from orchestrator.core.incident import IncidentSpec
        from orchestrator.core.journal import Journal
        with Journal({str(db)!r}) as j:
            j.incidents.open(IncidentSpec.model_validate({{"worm": "W" + sys.argv[1], "vectors": ["tcp/445"]}}), "op")
        """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], stderr=subprocess.PIPE, text=True)
             for i in range(30)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 30, [e for e in errors if e][:2]
    with Journal(db) as j:
        assert sorted(i.spec.worm for i in j.incidents.all()) == sorted(f"W{i}" for i in range(30))
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_the_journal_is_made_private_again_on_open(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    Journal(db).close()
    db.chmod(0o644)
    Journal(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_every_event_kind_has_a_detail_model_and_a_wrong_field_is_refused(tmp_path: Path) -> None:
    from orchestrator.core.event_details import DETAILS
    from orchestrator.core.events import EventKind

    assert set(DETAILS) == set(EventKind) - {EventKind.INCIDENT_OPENED}
    with Journal(tmp_path / "j.db") as j:
        i = j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/1"]), "op")
        with pytest.raises(ValueError, match="reasn"):
            j.timeline.add(i.id, EventKind.CONTAINMENT_FAILED, "op", reasn="a typo")
        with pytest.raises(ValueError, match="detections"):
            j.timeline.add(i.id, EventKind.SPREAD_STOPPED, "op", quiet_window=4.0, detections="many")
        assert [e["kind"] for e in j.timeline.of(i.id)] == ["incident_opened"]  # nothing half-written


def test_unlock_refuses_a_live_holder_here_and_a_holder_checks_its_lock_before_changing(tmp_path: Path) -> None:
    from orchestrator.core.journal import machine_id

    with Journal(tmp_path / "j.db") as j:
        j.locks.acquire("x", 1, "alice")
        with pytest.raises(UserError, match=r"'x' is held by a live irm on this machine \(pid \d+, alice\)"):
            j.locks.unlock("x", "I think it is stuck", "bob")
        j.locks.assert_holding()  # still ours
        # someone removed it behind this run's back (another process's unlock of a lock it thought dead)
        j.db.execute("UPDATE locks SET pid=1, operator='bob', machine=? WHERE area='x'", (machine_id(),))
        with pytest.raises(UserError, match=r"the lock 'x' this run held is gone \(now held by pid 1 on .* \(bob\)\)"):
            j.locks.assert_holding()


def test_a_holder_in_another_container_with_the_same_host_name_is_never_taken_over(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        _hold(j, "x", 999999, os.uname().nodename, "1")  # a pid that does not exist here...
        j.db.execute("UPDATE locks SET machine=? WHERE area='x'", (f"{os.uname().nodename}|other-boot|pid:[1]",))
        # ...but it runs on another machine (another boot or PID namespace): not checkable, not taken
        with pytest.raises(UserError, match=r"pid 999999 on .*irm unlock x --reason TEXT"):
            j.locks.acquire("x", 1, "bob")
