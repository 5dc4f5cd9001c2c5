"""The files irm opens or writes, when they are not what irm expects: nothing irm was not asked to
write is changed (contents, modes, links), nothing hangs, and the error is one line naming the path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import LAB_INVENTORY, ROOT
from tests.unit.test_bad_input_corpus import _main

PLAN = ROOT / "plans" / "lab-worm.yml"


def _state(path: Path) -> tuple[int, bytes]:
    st = os.lstat(path)
    return st.st_mode, path.read_bytes() if stat.S_ISREG(st.st_mode) else b""


def _refused(argv: list[str], code: int, culprit: str) -> str:
    got, out, err = _main(argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert got == code, (got, out, err)
    assert len(lines) == 1 and lines[0].startswith("irm: error: ") and culprit in lines[0], err
    return lines[0]


def test_a_file_that_is_not_a_journal_is_never_changed(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    passwd.chmod(0o644)
    empty = tmp_path / "empty.db"
    empty.touch(mode=0o644)
    empty.chmod(0o644)
    for path, culprit in ((passwd, "not a SQLite file"), (empty, "an empty file")):
        before = _state(path)
        for argv in (["incident", "list"], ["status"], ["incident", "open", "--worm", "W", "--vector", "tcp/1"]):
            _refused([*argv, "--journal", str(path)], 3, culprit)
            assert _state(path) == before, f"{path.name} changed by {argv}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "passwd"]


def test_a_link_or_a_fifo_given_as_the_journal_is_refused_without_touching_its_target(tmp_path: Path) -> None:
    journal = tmp_path / "real.db"
    assert _main(["incident", "open", "--worm", "W", "--vector", "tcp/1", "--journal", str(journal)])[0] == 0
    journal.chmod(0o644)  # readable by others: irm fixes that on its own journal, never through a link
    link = tmp_path / "link.db"
    link.symlink_to(journal)
    before = _state(journal)
    _refused(["incident", "list", "--journal", str(link)], 3, "is a symbolic link")
    assert _state(journal) == before
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)
    _refused(["incident", "list", "--journal", str(fifo)], 3, "is not a file")  # refused, not waited on
    _refused(["status", "--journal", "/dev/zero"], 3, "is not a file")


@pytest.mark.parametrize("argv", [
    ["contain", "--area", "subsidiary-x", "--yes"],
    ["remediate", "--area", "subsidiary-x", "--yes", "--plan", str(PLAN)],
    ["recover", "--area", "subsidiary-x", "--yes"],
    ["mark-manual", "x-ws11", "--technician", "tech"],
], ids=["contain", "remediate", "recover", "mark-manual"])
def test_a_refused_command_creates_no_journal(argv: list[str], tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    _refused([*argv, "-i", str(LAB_INVENTORY), "--journal", str(journal)], 2, f"no journal at {journal}")
    assert list(tmp_path.iterdir()) == []


def test_report_and_map_replace_links_planted_in_their_directory_never_writing_through_them(
        tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    assert _main(["incident", "open", "--worm", "W", "--vector", "tcp/1", "--journal", str(journal)])[0] == 0
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("report.json", "report.md", "map.svg"):
        (out / name).symlink_to(victim)
    os.mkfifo(out / "report.html")  # a FIFO would hang a plain open for writing
    before = _state(victim)
    code, _, err = _main(["report", "--out", str(out), "-i", str(LAB_INVENTORY), "--journal", str(journal)])
    assert code == 0, err
    code, _, err = _main(["map", "--out", str(out), "-i", str(LAB_INVENTORY)])
    assert code == 0, err
    assert _state(victim) == before
    for name in ("report.json", "report.md", "report.html", "map.md", "map.svg"):
        assert stat.S_ISREG(os.lstat(out / name).st_mode) and (out / name).stat().st_size > 0, name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no private file left behind


@pytest.mark.parametrize("kind", ["fifo", "device", "huge", "directory"])
def test_plans_and_incident_files_are_read_only_when_regular_and_bounded(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "input.yml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        with path.open("wb") as fh:
            fh.truncate(2 * 1024 * 1024)  # sparse: 2 MiB of NUL bytes, over the 1 MiB limit
    elif kind == "directory":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    culprit = {"fifo": "a FIFO, not a regular file", "device": "a device, not a regular file",
               "huge": "more than 1,048,576 bytes", "directory": "a directory, not a regular file"}[kind]
    _refused(["validate", "--plan", str(path)], 2, culprit)
    _refused(["validate", "--incident-file", str(path)], 2, culprit)
    _refused(["incident", "open", "--file", str(path), "--journal", str(tmp_path / "j.db")], 2, culprit)
    assert not (tmp_path / "j.db").exists()


def test_a_secret_file_given_as_a_plan_is_never_echoed(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text("".join(f"user{i}:$6$salt{i}$hash{i}:19000:0:99999:7:::\n" for i in range(30)))
    code, out, err = _main(["validate", "--plan", str(shadow), "-i", str(LAB_INVENTORY)])
    assert code == 2 and "$6$" not in err + out and "hash" not in err + out, err
    lines = err.splitlines()
    assert len(lines) <= 6 and lines[-1].endswith("more problem(s)"), err


@pytest.mark.parametrize("kind", ["script", "plugin", "lookup", "pipe-filter"])
def test_an_untrusted_inventory_that_would_run_something_is_refused_before_ansible_reads_it(
        kind: str, tmp_path: Path) -> None:
    import shutil

    inv = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, inv)
    canary = tmp_path / "RAN"
    if kind == "script":
        script = inv / "extra.sh"
        script.write_text(f"#!/bin/sh\ntouch {canary}\necho '{{}}'\n")
        script.chmod(0o755)
        culprit = "extra.sh: executable"
    elif kind == "plugin":
        (inv / "cloud.yml").write_text("plugin: ansible.builtin.script\n")
        culprit = "cloud.yml: names an inventory plugin"
    elif kind == "lookup":
        (inv / "group_vars" / "soc.yml").write_text(f"irm_note: \"{{{{ lookup('pipe', 'touch {canary}') }}}}\"\n")
        culprit = "soc.yml:1: a template calling 'lookup'"
    else:
        (inv / "group_vars" / "soc.yml").write_text(f"irm_note: \"{{{{ 'touch {canary}' | pipe }}}}\"\n")
        culprit = "soc.yml:1: a template calling 'pipe'"
    for argv in (["validate", "--untrusted", "-i", str(inv)], ["map", "--untrusted", "-i", str(inv)]):
        code, _, err = _main(argv)
        assert code == 2 and culprit in err and err.startswith("irm: error: --untrusted: "), (argv, err)
    assert not canary.exists()


def test_hostile_alerts_never_kill_identify_nor_reach_the_terminal_raw(tmp_path: Path) -> None:
    import json

    alert = {"timestamp": "2026-12-02T22:00:00+00:00", "event_type": "alert", "src_ip": "198.18.32.11",
             "alert": {"signature_id": 1, "severity": 1, "signature": "\x1b[2J\x1b]0;pwned\x07" + "S" * 100_000}}
    eve = tmp_path / "eve.json"
    eve.write_text("\n".join([
        json.dumps(alert),
        '{"event_type":"alert","timestamp":"2026-12-02T22:00:00+00:00","src_ip":"198.18.32.12",'
        '"alert":{"signature_id":Infinity,"severity":1}}',
        '{"timestamp":"0001-01-01T00:30:00+01:00","event_type":"alert","src_ip":"198.18.32.11",'
        '"alert":{"signature_id":1,"severity":1}}',
        "[" * 100_000 + "]" * 100_000]) + "\n")
    code, out, err = _main(["identify", "-i", str(LAB_INVENTORY), "--journal", str(tmp_path / "none.db"),
                            "--source", f"suricata:{eve}", "--since", "48h"])
    assert code == 0, err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b[2J" in out and "3 line(s) not understood" in " ".join(out.split())
    assert "S" * 201 not in out.replace("\n", "").replace(" ", "")


def test_a_fifo_or_a_device_as_a_detection_log_is_unreadable_never_waited_on(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from orchestrator.core.inventory.load import load_inventory
    from orchestrator.identification.sources import AvLogSource, SuricataEveSource

    inv = load_inventory(LAB_INVENTORY)
    fifo = tmp_path / "eve.json"
    os.mkfifo(fifo)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    for path in (fifo, Path("/dev/zero")):
        source = SuricataEveSource(inv, path)
        assert source.detections(since) == [] and source.readable is False
        # x-ws11's log is the FIFO or device; the other hosts keep none (a lab beside this test writes theirs)
        hosts = {n: h.model_copy(update={"av_log": str(path) if n == "x-ws11" else None})
                 for n, h in inv.hosts.items()}
        av = AvLogSource(inv.model_copy(update={"hosts": hosts}), "subsidiary-x")
        assert av.detections(since) == []
