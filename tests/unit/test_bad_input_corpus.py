"""The bad-input corpus: inventories, plans, incident files, journals, command lines and hostile text in
every free-text field, each handed to the real ``irm`` entry point (``orchestrator.cli.main``, in this
process for speed; a sample runs as a subprocess at the end).

Every refused case asserts: the exit code (2 bad input, 3 environment, never 70 or a traceback), every
error line is one ``irm: error:`` line and one of them names the culprit, and the journal is intact
(same SQL dump before and after). Every hostile-but-legitimate case asserts the text is stored and
shown verbatim and that nothing in it was evaluated (no file a template or shell snippet would create).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible.utils.display  # noqa: F401  (initialised here, not under the harness's redirected streams)
import pytest
import yaml

from orchestrator import cli
from tests.conftest import BIN, LAB_INVENTORY, ROOT

PLAN = ROOT / "plans" / "lab-worm.yml"
BIG = "A" * 100_000


# -- the corpus's files -----------------------------------------------------------------------------------


@dataclass
class Corpus:
    root: Path
    journal: Path
    canary: Path  # a file every template or shell payload below tries to create

    def p(self, name: str) -> str:
        return str(self.root / name)


def _inventory(root: Path, name: str, mutate: Callable[[dict[str, Any]], None] | None = None,
               files: dict[str, str | bytes] | None = None) -> None:
    dest = root / name
    shutil.copytree(LAB_INVENTORY, dest)
    if mutate:
        data = yaml.safe_load((dest / "hosts.yml").read_text())
        mutate(data)
        (dest / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    for rel, content in (files or {}).items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _children(d: dict[str, Any]) -> dict[str, Any]:
    children: dict[str, Any] = d["all"]["children"]
    return children


def _flow(d: dict[str, Any]) -> dict[str, Any]:
    flow: dict[str, Any] = _children(d)["area_subsidiary_x"]["vars"]["irm_critical_flows"][0]
    return flow


def _set_flow(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        flow = _flow(d)
        for k, v in changes.items():
            if v is None:
                flow.pop(k, None)
            else:
                flow[k] = v
    return mutate


def _del_group(*path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        node = _children(d)
        for key in path[:-1]:
            node = node[key]["children"]
        del node[path[-1]]
    return mutate


def _host_var(group_path: list[str], host: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        node = _children(d)
        for key_ in group_path[:-1]:
            node = node[key_]["children"]
        node[group_path[-1]]["hosts"][host][key] = value
    return mutate


def _approvers(value: Any) -> dict[str, str | bytes]:
    """group_vars/all.yml with its irm_approvers replaced (group_vars override the inventory file)."""
    text = (LAB_INVENTORY / "group_vars" / "all.yml").read_text()
    head, rest = text.split("irm_approvers:", 1)
    tail = rest[rest.index("\n\n"):]
    return {"group_vars/all.yml": head + yaml.safe_dump({"irm_approvers": value}) + tail}


def _group_var(group: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        _children(d)[group].setdefault("vars", {})[key] = value
    return mutate


PLAN_OK = yaml.safe_load(PLAN.read_text())


def _plan(root: Path, name: str, change: Callable[[dict[str, Any]], None] | None = None,
          raw: str | bytes | None = None) -> None:
    path = root / name
    if raw is not None:
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
        return
    data = yaml.safe_load(PLAN.read_text())
    if change:
        change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _disinfect(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d["disinfection"][key] = value
    return change


def _top(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        if value is None:
            d.pop(key, None)
        else:
            d[key] = value
    return change


def _sqlite(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for s in statements:
        db.execute(s)
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    c = Corpus(root=root, journal=root / "journal.db", canary=root / "EVALUATED")
    opened = _main(["incident", "open", "--worm", "Lab.Worm", "--vector", "tcp/4445", "--journal", str(c.journal)])
    assert opened[0] == 0, opened
    # inventories
    inv: dict[str, dict[str, Any]] = {
        "inv-no-soc": dict(mutate=_del_group("soc")),
        "inv-no-edge": dict(mutate=_del_group("boundaries", "edge")),
        "inv-no-core": dict(mutate=_del_group("boundaries", "core")),
        "inv-tab-group-vars": dict(files={"group_vars/all.yml": "irm_os: linux\n\tbad: tab\n"}),
        "inv-colon-group-vars": dict(files={"group_vars/soc.yml": "irm_x: [\n  a: : b\n"}),
        "inv-bad-host-vars": dict(files={"host_vars/x-ws11.yml": "irm_os: [unclosed\n"}),
        "inv-unknown-key": dict(mutate=_group_var("area_hq", "irm_gatway", "gw-hq")),
        "inv-prefix-outside-lab": dict(mutate=lambda d: _children(d)["internet"]["vars"].update(
            irm_prefix="10.0.0.0/24", irm_gateway_address="10.0.0.1")),
        "inv-bad-prefix": dict(mutate=_group_var("internet", "irm_prefix", "198.19.0.0/33")),
        "inv-bad-address": dict(mutate=_host_var(["internet"], "inet-web", "ansible_host", "300.1.1.1")),
        "inv-dup-address": dict(mutate=_host_var(["internet"], "inet-web", "ansible_host", "198.18.0.6")),
        "inv-flow-whole-area": dict(mutate=_set_flow(sources=["subsidiary-x"])),
        "inv-flow-any": dict(mutate=_set_flow(sources=["0.0.0.0/0"])),
        "inv-flow-40-ports": dict(mutate=_set_flow(ports=list(range(8000, 8040)))),
        "inv-flow-unvalidated": dict(mutate=_set_flow(validated_by=None)),
        "inv-flow-worm-port": dict(mutate=_set_flow(ports=[4445])),
        "inv-flow-port-0": dict(mutate=_set_flow(ports=[0])),
        "inv-flow-unknown-endpoint": dict(mutate=_set_flow(destinations=["nowhere"])),
        "inv-flow-bad-protocol": dict(mutate=_set_flow(protocol="icmp")),
        "inv-flow-name-escape": dict(mutate=_set_flow(name="erp\x1b[2J")),
        "inv-flow-owner-bidi": dict(mutate=_set_flow(owner="Finance\u202eecnaniF")),
        "inv-approver-bad-key": dict(files=_approvers([{"name": "ciso", "role": "CISO", "key": "not-a-key"}])),
        "inv-approvers-not-list": dict(files=_approvers("ciso")),
        "inv-approver-two-keys": dict(files=_approvers([{"name": "ciso", "role": "CISO", "key": "ssh-ed25519 AAAA",
                                                         "key_file": "k.pub"}])),
        "inv-approver-bad-name": dict(files=_approvers([{"name": "Robert'); DROP TABLE", "role": "CISO",
                                                         "key": "ssh-ed25519 AAAA"}])),
        "inv-approver-not-a-key": dict(files=_approvers([{"name": "ciso", "role": "CISO",
                                                          "key": "-----BEGIN OPENSSH PRIVATE KEY-----"}])),
        "inv-gateway-missing": dict(mutate=_group_var("area_hq", "irm_gateway", "gw-nowhere")),
        "inv-cost-negative": dict(mutate=_group_var("area_hq", "irm_downtime_cost_per_hour", -5)),
        "inv-bad-os": dict(mutate=_host_var(["area_hq", "subarea_hq__office"], "hq-ws1", "irm_os", "beos")),
        "inv-bad-area-group": dict(mutate=lambda d: _children(d).update(area_Bad_Name={"hosts": {}})),
        "inv-health-unknown-host": dict(mutate=_host_var(["area_hq", "subarea_hq__office"], "hq-ws1",
                                                         "irm_health_checks",
                                                         [{"name": "erp", "host": "ghost", "port": 8069}])),
        "inv-binary-hosts": dict(files={"hosts.yml": b"\x00\x01\x02\xff\xfe binary"}),
        "inv-empty-hosts": dict(files={"hosts.yml": ""}),
        "inv-list-hosts": dict(files={"hosts.yml": "- a\n- b\n"}),
        "inv-worm-blocks-bad": dict(mutate=_host_var(["area_hq", "subarea_hq__office"], "hq-ws1",
                                                     "irm_lab_worm_blocks", ["everything"])),
        "inv-uplink-bad": dict(mutate=_host_var(["boundaries", "gateways"], "gw-x", "irm_uplink", "nonsense")),
        "inv-source-bad-kind": dict(files={"group_vars/all/sources.yml": "irm_detection_sources: [{kind: snort, "
                                                                            "path: /var/log/snort.log}]\n"}),
        "inv-source-no-path": dict(files={"group_vars/all/sources.yml": "irm_detection_sources: [{kind: suricata}]\n"}),
        "inv-sources-not-list": dict(files={"group_vars/all/sources.yml": "irm_detection_sources: suricata\n"}),
        "inv-threshold-zero": dict(files={"group_vars/all/sources.yml": "irm_detection_threshold: {detections: 0}\n"}),
        "inv-cell-no-reach": dict(files={"group_vars/all/cell.yml": "irm_crisis_cell_file: null\nirm_crisis_cell: "
                                         "{contacts: [{role: ciso, name: A, reviewed_at: 2026-01-01}]}\n"}),
        "inv-cell-bad-date": dict(files={"group_vars/all/cell.yml": "irm_crisis_cell_file: null\nirm_crisis_cell: "
                                         "{contacts: [{role: ciso, name: A, email: a@b.c, reviewed_at: soon}]}\n"}),
        "inv-notify-bad-url": dict(files={"group_vars/all/notify.yml": "irm_notify: {webhook: {url: 'ftp://x'}}\n"}),
        "inv-notify-no-sender": dict(files={"group_vars/all/notify.yml": "irm_notify: {smtp: {host: relay}}\n"}),
        "inv-node-not-a-node": dict(mutate=_group_var("area_hq", "irm_execution_node", "hq-ws1")),
        "inv-dup-gateway": dict(files={"hosts.yml": (LAB_INVENTORY / "hosts.yml").read_text().replace(
            "    area_subsidiary_x:\n      vars:\n",
            "    area_subsidiary_x:\n      vars:\n        irm_gateway: gw-hq\n")}),
        "inv-flow-validated-blank": dict(mutate=_set_flow(validated_by="  ")),
        "inv-flow-validated-future": dict(mutate=_set_flow(validated_at="2999-01-01T00:00:00+00:00")),
        "inv-cost-nan": dict(mutate=_group_var("area_hq", "irm_downtime_cost_per_hour", float("nan"))),
        "inv-cost-inf": dict(mutate=_group_var("area_hq", "irm_downtime_cost_per_hour", float("inf"))),
        "inv-rate-inf": dict(files={"group_vars/all.yml": (LAB_INVENTORY / "group_vars" / "all.yml").read_text()
                                    .replace("irm_crisis_cell_hourly_rate: 120", "irm_crisis_cell_hourly_rate: .inf")}),
    }
    for name, spec in inv.items():
        _inventory(root, name, **spec)
    (root / "empty.yml").write_text("")
    # plans
    plans: dict[str, dict[str, Any]] = {
        "plan-binary.yml": dict(raw=b"\x89PNG\r\n\x1a\n\x00\x00"),
        "plan-empty.yml": dict(raw=""),
        "plan-list.yml": dict(raw="- a\n"),
        "plan-yaml-error.yml": dict(raw="name: [x\n"),
        "plan-unknown-key.yml": dict(change=_top("disinfections", {})),
        "plan-proc-sshd.yml": dict(change=_disinfect("processes", ["sshd"])),
        "plan-proc-svchost.yml": dict(change=_disinfect("processes", ["svchost.exe"])),
        "plan-proc-wildcard.yml": dict(change=_disinfect("processes", ["*worm*"])),
        "plan-proc-python.yml": dict(change=_disinfect("processes", ["python3"])),
        "plan-proc-empty.yml": dict(change=_disinfect("processes", [""])),
        "plan-proc-escape.yml": dict(change=_disinfect("processes", ["worm\x1b]0;pwned\x07"])),
        "plan-file-root.yml": dict(change=_disinfect("files", ["/"])),
        "plan-file-etc.yml": dict(change=_disinfect("files", ["/etc"])),
        "plan-file-c.yml": dict(change=_disinfect("files", ["C:\\"])),
        "plan-file-d.yml": dict(change=_disinfect("files", ["d:/"])),
        "plan-file-windows.yml": dict(change=_disinfect("files", ["C:\\WINDOWS"])),
        "plan-file-dotdot.yml": dict(change=_disinfect("files", ["/tmp/x/../../etc/passwd"])),
        "plan-file-relative.yml": dict(change=_disinfect("files", ["worm.bin"])),
        "plan-file-users.yml": dict(change=_disinfect("files", ["c:\\users\\"])),
        "plan-key-hive.yml": dict(change=_disinfect("registry_keys", ["HKLM:\\SOFTWARE"])),
        "plan-key-run.yml": dict(change=_disinfect("registry_keys",
                                                   ["hklm:\\software\\microsoft\\windows\\currentversion\\run"])),
        "plan-key-bad.yml": dict(change=_disinfect("registry_keys", ["not a key"])),
        "plan-unvalidated.yml": dict(change=_top("validated_by", None)),
        "plan-bad-method.yml": dict(change=_top("methods", {"linux": ["format-disk"]})),
        "plan-bad-reference.yml": dict(change=_top("references", ["see attached"])),
        "plan-name-escape.yml": dict(change=_top("name", "x\x1b[31m")),
        "plan-name-huge.yml": dict(change=_top("name", BIG)),
        "plan-bad-version.yml": dict(change=_top("fixes", {"linux": [{"name": "irm-lab-svc", "version": "1.1; rm"}]})),
        "plan-bad-package.yml": dict(change=_top("fixes", {"linux": [{"name": "pkg; rm -rf /", "version": "1"}]})),
        "plan-methods-not-map.yml": dict(change=_top("methods", ["package"])),
        # what would destroy what the plan should protect (orchestrator/remediation/protected.py)
        "plan-proc-sshd-path.yml": dict(change=_disinfect("processes", ["/usr/sbin/sshd"])),
        "plan-proc-systemd-path.yml": dict(change=_disinfect("processes", ["/lib/systemd/systemd"])),
        "plan-proc-lsass-path.yml": dict(change=_disinfect("processes", ["C:\\Windows\\System32\\lsass.exe"])),
        "plan-proc-journal.yml": dict(change=_disinfect("processes", ["systemd-journal"])),
        "plan-proc-sshd-session.yml": dict(change=_disinfect("processes", ["sshd-session"])),
        "plan-svc-star.yml": dict(change=_disinfect("services", ["*"])),
        "plan-svc-winrm.yml": dict(change=_disinfect("services", ["WinRM"])),
        "plan-svc-sshd.yml": dict(change=_disinfect("services", ["sshd"])),
        "plan-svc-nftables.yml": dict(change=_disinfect("services", ["nftables.service"])),
        "plan-file-passwd.yml": dict(change=_disinfect("files", ["/etc/passwd"])),
        "plan-file-authorized-keys.yml": dict(change=_disinfect("files", ["/root/.ssh/authorized_keys"])),
        "plan-file-device.yml": dict(change=_disinfect("files", ["/dev/sda"])),
        "plan-file-sam.yml": dict(change=_disinfect("files", ["C:\\Windows\\System32\\config\\SAM"])),
        "plan-file-journal.yml": dict(change=_disinfect("files", ["/var/lib/irm/journal.db"])),
        "plan-file-wildcard.yml": dict(change=_disinfect("files", ["/tmp/worm*"])),
        "plan-key-sam.yml": dict(change=_disinfect("registry_keys", ["HKLM:\\SAM"])),
        "plan-key-winrm.yml": dict(change=_disinfect("registry_keys",
                                                   ["HKLM:\\SYSTEM\\CurrentControlSet\\Services\\WinRM"])),
        "plan-key-winlogon.yml": dict(change=_disinfect("registry_keys", [
            "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon"])),
        "plan-key-wildcard.yml": dict(change=_disinfect("registry_keys", ["HKLM:\\SOFTWARE\\Worm*"])),
        "plan-dup-disinfection.yml": dict(raw=PLAN.read_text() + "\ndisinfection:\n  processes: [other]\n"),
        "plan-validated-by-blank.yml": dict(change=_top("validated_by", "   ")),
        "plan-validated-in-future.yml": dict(change=_top("validated_at", "2999-01-01T00:00:00+00:00")),
    }
    for name, spec in plans.items():
        _plan(root, name, **spec)
    # incident files
    incidents = {
        "inc-binary.yml": b"\xff\xfe\x00\x00",
        "inc-empty.yml": b"",
        "inc-no-vectors.yml": b"worm: W\n",
        "inc-vector-zero.yml": b"worm: W\nvectors: [tcp/0]\n",
        "inc-vector-icmp.yml": b"worm: W\nvectors: [icmp/1]\n",
        "inc-vector-huge.yml": b"worm: W\nvectors: [tcp/99999]\n",
        "inc-worm-escape.yml": b"worm: \"W\\e[2J\"\nvectors: [tcp/445]\n",
        "inc-worm-newline.yml": b"worm: \"W\\nX\"\nvectors: [tcp/445]\n",
        "inc-worm-huge.yml": f"worm: {BIG}\nvectors: [tcp/445]\n".encode(),
        "inc-unknown-key.yml": b"worm: W\nvectors: [tcp/445]\nseverity: high\n",
        "inc-bad-reference.yml": b"worm: W\nvectors: [tcp/445]\nreferences: [javascript:alert(1)]\n",
        "inc-yaml-error.yml": b"worm: W\nvectors: [tcp/445\n",
        "inc-list.yml": b"- worm\n",
        "inc-signature-bidi.yml": "worm: W\nvectors: [tcp/445]\nsignatures: [\"Trojan\u202eexe.\"]\n".encode(),
        "inc-vectors-string.yml": b"worm: W\nvectors: tcp/445\n",
        "inc-dup-worm.yml": b"worm: W\nvectors: [tcp/445]\nworm: X\n",
    }
    for name, content in incidents.items():
        (root / name).write_bytes(content)
    # journals
    (root / "j-text.db").write_text("not a database\n")
    shutil.copy(c.journal, root / "j-truncated.db")
    with open(root / "j-truncated.db", "r+b") as fh:
        fh.truncate(4096)
    _sqlite(root / "j-foreign.db", "CREATE TABLE users(id INTEGER, name TEXT)")
    _sqlite(root / "j-app.db", "PRAGMA application_id=1234", "CREATE TABLE incidents(x)")
    _sqlite(root / "j-newer.db", "PRAGMA user_version=999", "CREATE TABLE incidents(x)", "CREATE TABLE events(x)",
            "CREATE TABLE stages(x)")
    (root / "j-dir.db").mkdir()
    return c


# -- the harness ----------------------------------------------------------------------------------------------


def _main(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run irm's entry point in this process: (exit code, stdout, stderr). An exception that escapes
    main() is a traceback an operator would see: it fails the test."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_env = sys.argv, dict(os.environ)
    sys.argv = ["irm", *argv]
    os.environ.update({"COLUMNS": "250", **(env or {})})
    code: int | str | None = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return int(code or 0), out.getvalue(), err.getvalue()


def _dump(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


@dataclass(frozen=True)
class Bad:
    argv: tuple[str, ...]
    code: int
    culprit: str

    def __str__(self) -> str:
        return " ".join(self.argv)[:80]


def _bad(code: int, culprit: str, *argv: str) -> Bad:
    return Bad(tuple(argv), code, culprit)


J = "{journal}"
INV = "{inventory}"


def _cases() -> list[Any]:
    cases: list[Any] = []

    def add(case_id: str, case: Bad) -> None:
        cases.append(pytest.param(case, id=case_id))

    # inventories: `irm validate`, and commands that load them
    inv_culprits = {
        "inv-no-soc": "group 'soc' needs one host",
        "inv-no-edge": "group 'edge' needs one host",
        "inv-no-core": "group 'core' needs one host",
        "inv-tab-group-vars": "group_vars/all.yml:2: not valid YAML",
        "inv-colon-group-vars": "group_vars/soc.yml:2: not valid YAML",
        "inv-bad-host-vars": "host_vars/x-ws11.yml",
        "inv-unknown-key": "irm_gatway",
        "inv-prefix-outside-lab": "10.0.0.0/24",
        "inv-bad-prefix": "198.19.0.0/33",
        "inv-bad-address": "300.1.1.1",
        "inv-dup-address": "198.18.0.6 is already the address",
        "inv-flow-whole-area": "source 'subsidiary-x' is a whole area",
        "inv-flow-any": "source '0.0.0.0/0' is the whole address space",
        "inv-flow-40-ports": "40 ports is not an explicit service",
        "inv-flow-unvalidated": "not validated",
        "inv-flow-port-0": "port 0 is not between 1 and 65535",
        "inv-flow-unknown-endpoint": "destination 'nowhere' is no known host",
        "inv-flow-bad-protocol": "protocol",
        "inv-flow-name-escape": "U+001B",
        "inv-flow-owner-bidi": "U+202E",
        "inv-approver-bad-key": "irm_approvers.0.key",
        "inv-approvers-not-list": "irm_approvers",
        "inv-approver-two-keys": "give exactly one of key",
        "inv-approver-bad-name": "irm_approvers.0.name",
        "inv-approver-not-a-key": "irm_approvers.0.key",
        "inv-gateway-missing": "'gw-nowhere' is not a host of group 'gateways'",
        "inv-cost-negative": "irm_downtime_cost_per_hour",
        "inv-bad-os": "irm_os",
        "inv-bad-area-group": "area_Bad_Name",
        "inv-health-unknown-host": "'ghost' is not a managed host",
        "inv-binary-hosts": "inv-binary-hosts",
        "inv-empty-hosts": "group 'soc' needs one host",
        "inv-list-hosts": "inv-list-hosts",
        "inv-worm-blocks-bad": "irm_lab_worm_blocks",
        "inv-uplink-bad": "irm_uplink",
        "inv-source-bad-kind": "irm_detection_sources.0.kind",
        "inv-source-no-path": "a suricata source needs a path",
        "inv-sources-not-list": "irm_detection_sources",
        "inv-threshold-zero": "irm_detection_threshold.detections",
        "inv-cell-no-reach": "ciso A: give an email or a phone",
        "inv-cell-bad-date": "irm_crisis_cell.contacts.0.reviewed_at",
        "inv-notify-bad-url": "irm_notify.webhook.url",
        "inv-notify-no-sender": "irm_notify.smtp.sender",
        "inv-node-not-a-node": "'hq-ws1' is not a host of group 'execution_nodes'",
        "inv-cost-nan": "irm_downtime_cost_per_hour", "inv-cost-inf": "irm_downtime_cost_per_hour",
        "inv-dup-gateway": "hosts.yml:91:9: YAML parsing failed: Found duplicate mapping key 'irm_gateway'",
        "inv-flow-validated-blank": "validated_by is blank", "inv-flow-validated-future": "is in the future",
        "inv-rate-inf": "crisis_cell_hourly_rate': Input should be a finite number",
    }
    for name, culprit in inv_culprits.items():
        add(f"validate-{name}", _bad(2, culprit, "validate", "-i", f"{{root}}/{name}"))
    add("validate-inv-flow-worm-port-with-incident", _bad(
        2, "uses tcp/4445, a propagation vector", "validate", "-i", "{root}/inv-flow-worm-port", "--journal", J))
    for name in ("inv-no-edge", "inv-flow-whole-area", "inv-tab-group-vars", "inv-binary-hosts"):
        culprit = "has no edge" if name == "inv-no-edge" else inv_culprits[name]
        add(f"contain-{name}", _bad(2, culprit, "contain", "--area", "subsidiary-x", "--yes", "-i",
                                    f"{{root}}/{name}", "--journal", J))
    for name in ("inv-bad-host-vars", "inv-unknown-key"):
        add(f"status-{name}", _bad(2, inv_culprits[name], "status", "-i", f"{{root}}/{name}", "--journal", J))
        add(f"report-{name}", _bad(2, inv_culprits[name], "report", "--out", "{root}/out-" + name, "-i",
                                   f"{{root}}/{name}", "--journal", J))
    add("validate-missing-inventory", _bad(2, "/nonexistent/inv", "validate", "-i", "/nonexistent/inv"))
    add("validate-empty-file", _bad(2, "group 'soc' needs one host", "validate", "-i", "{root}/empty.yml"))

    # plans: `irm validate --plan` and `irm remediate --plan`
    plan_culprits = {
        "plan-binary.yml": "not UTF-8 text", "plan-empty.yml": "expected a mapping", "plan-list.yml":
        "expected a mapping", "plan-yaml-error.yml": "plan-yaml-error.yml:2: not valid YAML",
        "plan-unknown-key.yml": "disinfections", "plan-proc-sshd.yml": "'sshd' is an essential process",
        "plan-proc-svchost.yml": "'svchost.exe' is an essential process",
        "plan-proc-wildcard.yml": "'*worm*' has a wildcard",
        "plan-proc-python.yml": "'python3' is an essential process", "plan-proc-empty.yml": "disinfection.processes",
        "plan-proc-escape.yml": "U+001B", "plan-file-root.yml": "'/' is a root, system",
        "plan-file-etc.yml": "'/etc' is a root, system", "plan-file-c.yml": "is a root, system",
        "plan-file-d.yml": "'d:/' is not an absolute path", "plan-file-windows.yml": "is a root, system",
        "plan-file-dotdot.yml": "is not a plain path", "plan-file-relative.yml": "'worm.bin' is not an absolute path",
        "plan-file-users.yml": "is a root, system", "plan-key-hive.yml": "is a hive or a system key",
        "plan-key-run.yml": "is a hive or a system key", "plan-key-bad.yml": "'not a key' is not a registry key",
        "plan-unvalidated.yml": "not validated", "plan-bad-method.yml": "format-disk",
        "plan-bad-reference.yml": "'see attached' is not a CVE", "plan-name-escape.yml": "U+001B",
        "plan-name-huge.yml": "name", "plan-bad-version.yml": "fixes.linux.0.version",
        "plan-bad-package.yml": "fixes.linux.0.name", "plan-methods-not-map.yml": "methods",
        "plan-proc-sshd-path.yml": "'/usr/sbin/sshd' is an essential process",
        "plan-proc-systemd-path.yml": "'/lib/systemd/systemd' is an essential process",
        "plan-proc-lsass-path.yml": "lsass.exe' is an essential process",
        "plan-proc-journal.yml": "'systemd-journal' is an essential process",
        "plan-proc-sshd-session.yml": "'sshd-session' is an essential process",
        "plan-svc-star.yml": "'*' has a wildcard", "plan-svc-winrm.yml": "'WinRM' is a service the system",
        "plan-svc-sshd.yml": "'sshd' is a service the system", "plan-svc-nftables.yml": "'nftables.service' is a",
        "plan-file-passwd.yml": "'/etc/passwd' is a system, credential",
        "plan-file-authorized-keys.yml": "'/root/.ssh/authorized_keys' is a system, credential",
        "plan-file-device.yml": "'/dev/sda' is a system, credential, device",
        "plan-file-sam.yml": "config\\SAM' is a system, credential",
        "plan-file-journal.yml": "'/var/lib/irm/journal.db' is a system", "plan-file-wildcard.yml": "has a wildcard",
        "plan-key-sam.yml": "is a hive or a system key", "plan-key-winrm.yml": "is the key of a service",
        "plan-key-winlogon.yml": "is a hive or a system key", "plan-key-wildcard.yml": "has a wildcard",
        "plan-dup-disinfection.yml": "key 'disinfection' is given twice",
        "plan-validated-by-blank.yml": "validated_by is blank", "plan-validated-in-future.yml": "is in the future",
    }
    for name, culprit in plan_culprits.items():
        add(f"validate-{name}", _bad(2, culprit, "validate", "--plan", f"{{root}}/{name}"))
    for name in ("plan-binary.yml", "plan-proc-sshd.yml", "plan-file-c.yml", "plan-unvalidated.yml"):
        add(f"remediate-{name}", _bad(2, plan_culprits[name], "remediate", "--area", "subsidiary-x", "--yes",
                                      "--plan", f"{{root}}/{name}", "--journal", J))
    add("validate-plan-missing", _bad(2, "cannot be read", "validate", "--plan", "/nonexistent/plan.yml"))
    add("validate-plan-directory", _bad(2, "cannot be read", "validate", "--plan", "{root}"))

    # incident files: `irm incident open --file` and `irm validate --incident-file`
    inc_culprits = {
        "inc-binary.yml": "not UTF-8 text", "inc-empty.yml": "expected a mapping", "inc-no-vectors.yml": "vectors",
        "inc-vector-zero.yml": "vectors", "inc-vector-icmp.yml": "'icmp/1' is not a vector",
        "inc-vector-huge.yml": "vectors", "inc-worm-escape.yml": "U+001B", "inc-worm-newline.yml": "U+000A",
        "inc-worm-huge.yml": "worm", "inc-unknown-key.yml": "severity",
        "inc-bad-reference.yml": "'javascript:alert(1)' is not a CVE", "inc-yaml-error.yml": "not valid YAML",
        "inc-list.yml": "expected a mapping", "inc-signature-bidi.yml": "U+202E", "inc-vectors-string.yml": "vectors",
        "inc-dup-worm.yml": "inc-dup-worm.yml:3: not valid YAML (key 'worm' is given twice)",
    }
    for name, culprit in inc_culprits.items():
        add(f"incident-open-{name}", _bad(2, culprit, "incident", "open", "--file", f"{{root}}/{name}",
                                          "--journal", J))
        add(f"validate-{name}", _bad(2, culprit, "validate", "--incident-file", f"{{root}}/{name}"))
    add("incident-open-file-and-flags", _bad(2, "either --file or the --worm", "incident", "open", "--file",
                                             "{root}/inc-empty.yml", "--worm", "W", "--journal", J))

    # journals that cannot be used: exit 3, the journal named
    for name, culprit in (("j-text.db", "not an irm journal, or damaged"), ("j-truncated.db", "damaged"),
                          ("j-foreign.db", "tables: users"), ("j-app.db", "another application"),
                          ("j-newer.db", "newer irm"), ("j-dir.db", "is not a file")):
        for argv in (["incident", "list"], ["status"], ["note", "x", "--operator", "y"], ["action", "list"]):
            add(f"{argv[0]}-{name}", _bad(3, culprit, *argv, "--journal", f"{{root}}/{name}"))
    add("validate-journal-missing", _bad(2, "no journal at", "validate", "--journal", "{root}/none.db"))
    add("incident-open-journal-dir-missing", _bad(2, "does not exist", "incident", "open", "--worm", "W",
                                                  "--vector", "tcp/1", "--journal", "{root}/nodir/j.db"))

    # command lines
    for case_id, culprit, argv in (
        ("unknown-command", "No such command 'frobnicate'", ["frobnicate"]),
        ("contain-no-area", "--area", ["contain", "--journal", J]),
        ("contain-unknown-area", "unknown area 'atlantis'", ["contain", "--area", "atlantis", "--journal", J]),
        ("contain-timeout-too-small", "--confirm-timeout", ["contain", "--area", "hq", "--confirm-timeout", "1"]),
        ("contain-timeout-not-int", "--confirm-timeout", ["contain", "--area", "hq", "--confirm-timeout", "soon"]),
        ("approve-area-twice", "--area is given more than once",
         ["approve", "--area", "hq", "--area", "subsidiary-x", "--key", "k", "--reason", "r", "--journal", J]),
        ("remediate-no-area", "--area", ["remediate", "--journal", J]),
        ("recover-no-area", "--area", ["recover", "--journal", J]),
        ("remediate-unknown-area", "unknown area 'atlantis'",
         ["remediate", "--area", "subsidiary-x", "--area", "atlantis", "--journal", J]),
        ("recover-soak-twice", "--soak is given more than once",
         ["recover", "--area", "hq", "--soak=5s", "--soak", "60s", "--journal", J]),
        ("incident-open-worm-twice", "--worm is given more than once",
         ["incident", "open", "--worm", "W", "--vector", "tcp/1", "--worm", "X", "--journal", J]),
        ("journal-twice", "--journal is given more than once", ["status", "--journal", J, "--journal", J]),
        ("contain-incident-99", "no incident 99", ["contain", "--area", "hq", "--incident", "99", "--journal", J]),
        ("recover-bad-soak", "'soon' is not a duration", ["recover", "--area", "hq", "--soak", "soon", "--journal",
                                                          J]),
        ("recover-bad-only", "--only 'lunch' is no recovery step",
         ["recover", "--area", "subsidiary-x", "--only", "lunch", "--journal", J]),
        ("recover-unknown-area", "unknown area 'nowhere'", ["recover", "--area", "nowhere", "--journal", J]),
        ("incident-open-no-worm", "--worm NAME", ["incident", "open", "--vector", "tcp/1", "--journal", J]),
        ("incident-open-no-vector", "--vector", ["incident", "open", "--worm", "W", "--journal", J]),
        ("incident-open-bad-vector", "'smb' is not a vector", ["incident", "open", "--worm", "W", "--vector", "smb",
                                                              "--journal", J]),
        ("incident-open-port-0", "vectors", ["incident", "open", "--worm", "W", "--vector", "tcp/0", "--journal", J]),
        ("incident-open-bad-ref", "is not a CVE", ["incident", "open", "--worm", "W", "--vector", "tcp/1",
                                                  "--reference", "<script>", "--journal", J]),
        ("note-bad-kind", "--kind", ["note", "x", "--operator", "y", "--kind", "meh", "--journal", J]),
        ("action-bad-react", "--react 'RA1'", ["action", "add", "x", "--owner", "o", "--react", "RA1", "--journal",
                                               J]),
        ("action-bad-due", "--due 'tomorrow'", ["action", "add", "x", "--owner", "o", "--due", "tomorrow",
                                                "--journal", J]),
        ("exclude-not-area-host", "'edge-fw' is not an area host", ["exclude", "edge-fw", "--reason", "r",
                                                                    "--journal", J]),
        ("approve-unknown-area", "unknown area 'nowhere'", ["approve", "--area", "nowhere", "--key", "/dev/null",
                                                            "--reason", "r", "--journal", J]),
        ("approve-key-missing", "--key /nonexistent/key", ["approve", "--area", "hq", "--key", "/nonexistent/key",
                                                           "--reason", "r", "--journal", J]),
        ("approve-key-not-ssh", "--key", ["approve", "--area", "hq", "--key", str(PLAN), "--reason", "r",
                                          "--journal", J]),
        ("approve-key-device", "--key /dev/zero: cannot be read: a device", ["approve", "--area", "hq", "--key",
                                                                             "/dev/zero", "--reason", "r",
                                                                             "--journal", J]),
        ("mark-manual-no-technician", "--technician", ["mark-manual", "x-ws11", "--journal", J]),
        ("mark-manual-unknown-host", "ghost", ["mark-manual", "ghost", "--technician", "t", "--journal", J]),
        ("unlock-no-reason", "--reason", ["unlock", "subsidiary-x", "--journal", J]),
        ("incident-subcommand-unknown", "No such command 'reopen'", ["incident", "reopen", "--journal", J]),
        ("incident-close-no-id", "Missing argument 'INCIDENT'", ["incident", "close", "--journal", J]),
        ("incident-close-force-no-reason", "--reason", ["incident", "close", "1", "--force", "--journal", J]),
        ("report-incident-99", "no incident 99", ["report", "--incident", "99", "--out", "{root}/r99",
                                                  "--journal", J]),
        ("identify-bad-source", "unknown kind 'snort'", ["identify", "--source", "snort:/x", "--journal", J]),
        ("identify-source-missing", "/nonexistent/eve.json is not a readable file",
         ["identify", "--source", "suricata:/nonexistent/eve.json", "--journal", J]),
        ("identify-bad-within", "'a while' is not a duration", ["identify", "--within", "a while", "--journal", J]),
        ("identify-threshold-0", "--threshold", ["identify", "--threshold", "0", "--journal", J]),
        ("contain-bad-source", "lab_av takes no path", ["contain", "--area", "hq", "--source", "lab_av:/x",
                                                        "--journal", J]),
        ("map-out-unwritable", "map: cannot write into /proc/irm-map", ["map", "--out", "/proc/irm-map"]),
        # numbers and durations: each has a stated range, NaN and infinities are none
        ("contain-quiet-nan", "--quiet-window", ["contain", "--area", "hq", "--quiet-window", "nan", "--journal", J]),
        ("contain-quiet-negative", "--quiet-window", ["contain", "--area", "hq", "--quiet-window", "-5",
                                                      "--journal", J]),
        ("contain-max-wait-negative", "--max-wait", ["contain", "--area", "hq", "--max-wait", "-1", "--journal", J]),
        ("contain-max-wait-inf", "--max-wait", ["contain", "--area", "hq", "--max-wait", "inf", "--journal", J]),
        ("recover-soak-nan", "--soak 'nan'", ["recover", "--area", "hq", "--soak", "nan", "--journal", J]),
        ("recover-soak-inf", "--soak 'inf'", ["recover", "--area", "hq", "--soak", "inf", "--journal", J]),
        ("recover-soak-huge", "--soak '99999999999h'", ["recover", "--area", "hq", "--soak", "99999999999h",
                                                        "--journal", J]),
        ("recover-quiet-nan", "--quiet-window 'nan'", ["recover", "--area", "hq", "--quiet-window", "nan",
                                                       "--journal", J]),
        ("identify-within-0", "--within '0'", ["identify", "--within", "0", "--journal", J]),
        ("identify-threshold-huge", "--threshold", ["identify", "--threshold", "100000000000000000000",
                                                    "--journal", J]),
        ("identify-since-inf", "--since 'inf'", ["identify", "--since", "inf", "--journal", J]),
        ("status-incident-huge", "--incident", ["status", "--incident", "99999999999999999999", "--journal", J]),
        ("report-incident-zero", "--incident", ["report", "--incident", "0", "--out", "{root}/r0", "--journal", J]),
        # the CACAO export and the live board
        ("export-cacao-unknown-area", "unknown area 'subsidiary-q'", ["export", "cacao", "--area", "subsidiary-q",
                                                                     "--out", "{root}/c.json"]),
        ("export-cacao-incident-99", "no incident 99", ["export", "cacao", "--as-run", "--incident", "99", "--out",
                                                        "{root}/c.json", "--journal", J]),
        ("export-cacao-out-dir", "is a directory", ["export", "cacao", "--out", "{root}"]),
        ("export-cacao-out-unwritable", "cannot write into /proc", ["export", "cacao", "--out", "/proc/c.json"]),
        ("serve-listen-any", "needs TLS", ["serve", "--listen", "0.0.0.0", "--journal", J]),
        ("serve-listen-name", "not an IP address", ["serve", "--listen", "board.example", "--journal", J]),
        ("serve-port-0", "--port", ["serve", "--port", "0", "--journal", J]),
        ("serve-key-alone", "go together", ["serve", "--tls-key", "/dev/null", "--journal", J]),
        ("serve-token-device", "--token-file /dev/zero is not a regular file", ["serve", "--token-file", "/dev/zero",
                                                                                 "--journal", J]),
    ):
        add(f"cli-{case_id}", _bad(2, culprit, *argv))

    # hostile text refused in one-line fields: control characters, bidi, 100 KB, empty
    hostile_refused = {"escape": ("W\x1b[2J", "U+001B"), "bell": ("W\x07", "U+0007"), "newline": ("a\nb", "U+000A"),
                       "bidi": ("a\u202eb", "U+202E"), "huge": (BIG, "at most"),
                       "blank": ("   ", "must not be empty"), "cr": ("a\rb", "U+000D"),
                       "linesep": ("a\u2028b", "U+2028")}
    for kind, (value, culprit) in hostile_refused.items():
        add(f"operator-{kind}", _bad(2, culprit, "incident", "open", "--worm", "W", "--vector", "tcp/1",
                                     "--operator", value, "--journal", J))
        add(f"worm-{kind}", _bad(2, culprit, "incident", "open", "--worm", value, "--vector", "tcp/1", "--journal", J))
        add(f"note-by-{kind}", _bad(2, culprit, "note", "ok", "--operator", value, "--journal", J))
        add(f"exclude-reason-{kind}", _bad(2, culprit, "exclude", "x-ws11", "--reason", value, "--journal", J))
        add(f"unlock-reason-{kind}", _bad(2, culprit, "unlock", "subsidiary-x", "--reason", value, "--journal", J))
        add(f"action-owner-{kind}", _bad(2, culprit, "action", "add", "fix it", "--owner", value, "--journal", J))
        add(f"approve-reason-{kind}", _bad(2, culprit, "approve", "--area", "hq", "--key", "/dev/null", "--reason",
                                           value, "--journal", J))
        if kind not in ("newline",):  # multi-line fields accept newlines
            add(f"note-text-{kind}", _bad(2, culprit, "note", value, "--operator", "lead", "--journal", J))
    return cases


CASES = _cases()


def test_the_corpus_has_at_least_150_cases() -> None:
    assert len(CASES) >= 150, len(CASES)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_in_one_line_with_nothing_applied(case: Bad, corpus: Corpus) -> None:
    argv = [a.format(root=corpus.root, journal=corpus.journal) for a in case.argv]
    before = _dump(corpus.journal)
    files_before = sorted(p.name for p in corpus.root.iterdir())
    code, out, err = _main(argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == case.code, f"exit {code}, expected {case.code}: {err or out}"
    assert "Traceback" not in err + out
    assert lines and all(ln.startswith("irm: error: ") for ln in lines), err
    assert any(case.culprit in ln for ln in lines), f"no line names {case.culprit!r}: {err}"
    assert all(len(ln) < 2000 for ln in lines), "an error line echoes a huge value"
    assert _dump(corpus.journal) == before, "the journal changed"
    assert sorted(p.name for p in corpus.root.iterdir()) == files_before, "a file appeared"


# -- hostile but legitimate text: stored and shown verbatim, never evaluated ------------------------------


def _payloads(canary: Path) -> dict[str, str]:
    return {
        "markup": "[bold]Wanna[/bold]Cry [/] [link=http://x]y[/link]",
        "jinja": "{{ lookup('pipe', 'touch " + str(canary) + "') }}",
        "jinja-block": "{% for x in range(3) %}{{ x }}{% endfor %} {# c #}",
        "shell": f"$(touch {canary}) `id`; touch {canary.name} | tee && echo",
        "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
        "markdown": "# heading | cell | [link](http://evil) ![i](x) **b** _i_ `code`",
        "format": "%s %d {0} {worm} ${HOME} %(x)s",
        "unicode": "Ωmega wörm — 蠕虫 🐛 عدودة",
        "sql": "'); DROP TABLE incidents; --",
    }


@pytest.mark.parametrize("kind", list(_payloads(Path("/x"))))
def test_hostile_but_legitimate_text_is_kept_verbatim_and_never_evaluated(kind: str, tmp_path: Path) -> None:
    canary = tmp_path / "EVALUATED"
    value = _payloads(canary)[kind]
    journal = str(tmp_path / "j.db")
    code, out, err = _main(["incident", "open", "--worm", value, "--vector", "tcp/4445", "--signature", value,
                            "--journal", journal], env={"IRM_OPERATOR": value[:100]})
    assert code == 0, err
    assert _main(["note", value, "--operator", value[:100], "--kind", "wrong", "--journal", journal])[0] == 0
    assert _main(["action", "add", value, "--owner", value[:200], "--journal", journal])[0] == 0
    for argv in (["incident", "list"], ["action", "list"], ["status"]):
        code, out, err = _main([*argv, "--journal", journal])
        assert code == 0 and "Traceback" not in err, err
    code, out, _ = _main(["incident", "list", "--json", "--journal", journal])
    assert code == 0 and json.loads(out)[0]["worm"] == value
    db = sqlite3.connect(journal)
    (worm,) = db.execute("SELECT worm FROM incidents").fetchone()
    (note,) = db.execute("SELECT text FROM notes").fetchone()
    db.close()
    assert worm == value and note == value
    out_dir = tmp_path / "report"
    code, _, err = _main(["report", "--out", str(out_dir), "--journal", journal])
    assert code == 0, err
    md = (out_dir / "report.md").read_text()
    html = (out_dir / "report.html").read_text()
    assert "<script>" not in md and "<script>" not in html
    assert not any(line.startswith("# heading") for line in md.splitlines())
    wrong = md.split("## What went wrong", 1)[1].split("##", 1)[0]
    assert "note by" in wrong  # the --kind wrong note is among what went wrong
    assert not canary.exists(), "a payload was evaluated"


def test_a_sample_as_subprocesses_no_traceback(corpus: Corpus) -> None:
    """The console script itself (not only main()): a few cases from each family."""
    for argv, code in ((["validate", "-i", corpus.p("inv-tab-group-vars")], 2),
                       (["validate", "--plan", corpus.p("plan-binary.yml")], 2),
                       (["incident", "list", "--journal", corpus.p("j-text.db")], 3),
                       (["frobnicate"], 2),
                       (["note", "x\x1b[2J", "--operator", "a", "--journal", str(corpus.journal)], 2)):
        proc = subprocess.run([str(BIN / "irm"), *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("irm: error: ")
