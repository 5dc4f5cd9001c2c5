"""Build, inspect and tear down the namespace lab described by an inventory.

``up`` writes the wiring plan to the lab's state directory before creating anything, so ``down`` can
remove every namespace, veth, process and file even after ``up`` was killed half-way. Processes are
found by namespace (``ip netns pids``) and, for the SOC side, by their command line naming the lab's
state directory, and are stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.core.errors import LabError, UnknownNameError
from orchestrator.core.inventory import Host, Inventory
from orchestrator.lab.agent import PAYLOAD_MAGIC
from orchestrator.lab.topology import LabPlan, plan_lab

# One revert-timer minute on the lab's emulated IOS devices, in seconds: a change irm cannot confirm is
# rolled back by the device after 30 s instead of 60 (irm reads the device until it has, whatever the
# length).
IOS_MINUTE = 30.0
PLAN_FILE = "lab.json"
MARKER_FILE = ".irm-lab"
REQUIRED_COMMANDS = ("ip", "nft", "sshd", "ssh-keygen")

Step = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def run(cmd: list[str], *, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input_text, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"command failed: {' '.join(cmd)}: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc


def ns_exec(ns: str, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run(["ip", "netns", "exec", ns, *cmd], **kwargs)


def _lab_dir(host: Host) -> Path:
    """Where the lab keeps a host's own plumbing (sshd, agent); the host state dir is the role's."""
    return Path(host.state_dir) / "lab"


def _require_lab(inv: Inventory) -> Any:
    if inv.lab is None:
        raise LabError(f"{inv.source}: group 'all' has no irm_lab_name: this inventory does not describe a lab")
    return inv.lab


def preflight() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, veth pairs, nftables): run as root")
    missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None and not Path(f"/usr/sbin/{c}").exists()]
    if missing:
        raise LabError(f"missing command(s) {', '.join(missing)}: run 'make setup' to install the lab's packages")


def existing_namespaces(lab: str) -> list[str]:
    proc = run(["ip", "netns", "list"], check=False)
    found = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    return [n for n in found if n.startswith(f"{lab}-")]


def _iface_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


# ------------------------------------------------------------------------------------------------
# up


def up(inv: Inventory, step: Step = _noop) -> LabPlan:
    preflight()
    lab = _require_lab(inv)
    plan = plan_lab(inv)
    state = Path(plan.state_dir)
    present = existing_namespaces(plan.lab)
    if (state / PLAN_FILE).exists() or present or any(_iface_exists(i) for i in plan.root_ifaces):
        raise LabError(
            f"lab '{plan.lab}' is already up ({len(present)} namespaces, state in {state}); "
            f"run 'irm lab down --inventory {inv.source}' first"
        )
    if state.exists() and any(state.iterdir()) and not (state / MARKER_FILE).exists():
        raise LabError(f"{state} exists and is not a lab state directory: refusing to use it (irm_lab_state_dir)")
    made_parents = [str(d) for d in state.parents if not d.exists()]
    state.mkdir(parents=True, exist_ok=True)
    (state / MARKER_FILE).write_text(f"irm lab {plan.lab}\n")
    created_run_sshd = not Path("/run/sshd").exists()
    record = {"plan": json.loads(plan.model_dump_json()), "created_run_sshd": created_run_sshd,
              "created_parents": made_parents,
              "hosts": {h.name: str(h.state_dir) for h in inv.managed_hosts}}
    (state / PLAN_FILE).write_text(json.dumps(record, indent=1))
    try:
        _build(inv, plan, lab, step)
    except BaseException:
        step("lab up failed: tearing down what was built")
        if not os.environ.get("IRM_LAB_KEEP_FAILED"):
            down(inv)
        raise
    return plan


def _approver_keys(inv: Inventory, state: Path, step: Step) -> None:
    """The lab's approvers sign with keys the lab makes: each approver whose key_file lies in the lab's
    state directory gets a fresh keypair there (private key beside it, without the .pub suffix)."""
    made = []
    for approver in inv.approvers:
        if approver.key_file and approver.key_file.endswith(".pub") and Path(approver.key_file).is_absolute() \
                and Path(approver.key_file).is_relative_to(state):
            private = Path(approver.key_file).with_suffix("")
            private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            private.unlink(missing_ok=True)
            Path(approver.key_file).unlink(missing_ok=True)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"irm-lab approver {approver.name}",
                 "-f", str(private)])
            made.append(approver.name)
    if made:
        step(f"approver keys: {', '.join(made)}")


def _build(inv: Inventory, plan: LabPlan, lab: Any, step: Step) -> None:
    state = Path(plan.state_dir)
    ssh_dir = state / "ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    step("lab key")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"irm-lab-{plan.lab}", "-f", str(ssh_dir / "id_ed25519")])
    shutil.copy(ssh_dir / "id_ed25519.pub", ssh_dir / "authorized_keys")
    _approver_keys(inv, state, step)

    step(f"{len(plan.namespaces)} namespaces")
    for netns in plan.namespaces:
        run(["ip", "netns", "add", netns.name])
        run(["ip", "-n", netns.name, "link", "set", "lo", "up"])
        ns_exec(netns.name, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                             "net.ipv6.conf.default.disable_ipv6=1",
                             f"net.ipv4.ip_forward={1 if netns.router else 0}"])

    step(f"{len(plan.bridges)} segments, {len(plan.links)} links")
    for br in plan.bridges:
        run(["ip", "-n", br.ns, "link", "add", br.name, "type", "bridge"])
        run(["ip", "-n", br.ns, "addr", "add", str(br.address), "dev", br.name])
        run(["ip", "-n", br.ns, "link", "set", br.name, "up"])
    # A segment is a switch: traffic between two hosts of one segment never meets the gateway's
    # firewall. With br_netfilter loaded, bridged frames would go through the namespace's forward chain
    # and a quarantine would also cut a sub-area's hosts from each other, which no real gateway does.
    for ns in sorted({br.ns for br in plan.bridges}):
        ns_exec(ns, ["sysctl", "-e", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0",
                     "net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0"])
    for link in plan.links:
        a_side = ["netns", link.a_ns] if link.a_ns else []
        run(["ip", "link", "add", link.a_if, *a_side, "type", "veth", "peer", "name", link.b_if, "netns", link.b_ns])
        a = ["ip", "-n", link.a_ns] if link.a_ns else ["ip"]
        if link.a_ns is None:
            run(["sysctl", "-q", "-w", f"net.ipv6.conf.{link.a_if}.disable_ipv6=1"])
        if link.a_address:
            run([*a, "addr", "add", str(link.a_address), "dev", link.a_if])
        if link.a_bridge:
            run([*a, "link", "set", link.a_if, "master", link.a_bridge])
        run([*a, "link", "set", link.a_if, "up"])
        run(["ip", "-n", link.b_ns, "addr", "add", str(link.b_address), "dev", link.b_if])
        run(["ip", "-n", link.b_ns, "link", "set", link.b_if, "up"])
    for route in plan.routes:
        r = ["ip", "-n", route.ns] if route.ns else ["ip"]
        if route.via is None:  # recorded in the plan above: lab down removes it even if up dies here
            run([*r, "route", "replace", "unreachable", str(route.prefix)])
        else:
            run([*r, "route", "add", str(route.prefix), "via", str(route.via)])

    # No nftables table at all: irm's own table appears with the first containment and goes with the
    # last recovery step, exactly as on hosts before an incident.
    step("sshd and lab services")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    known_hosts: list[str] = []
    targets = [{"host": h.name, "address": str(h.address)} for h in inv.hosts.values() if h.kind == "area"]
    for host in inv.managed_hosts:
        ns = plan.ns_of(host.name)
        Path(host.state_dir).mkdir(parents=True, exist_ok=True)
        labdir = _lab_dir(host)
        labdir.mkdir(exist_ok=True)
        if host.boundary_kind == "cisco_ios":  # the emulated device, with its own host key; no sshd
            known_hosts.append(_ios_device(inv, plan, host, labdir, ssh_dir))
            _start_ios(ns, labdir, ssh_dir)
            continue
        key = labdir / "ssh_host_ed25519_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)])
        key_type, key_body = key.with_suffix(".pub").read_text().split()[:2]
        known_hosts.append(f"{host.address} {key_type} {key_body}")
        (labdir / "sshd_config").write_text(_sshd_config(host, labdir, ssh_dir))
        _start_sshd(ns, labdir, node_tmp(host) if host.runs_jobs else None)
        if host.services or host.kind == "area":  # every area host has the lab's package tool and AV
            config = _agent_config(inv, plan, lab, host, targets)
            cfg_path = labdir / "agent.json"
            config["config_path"] = str(cfg_path)
            cfg_path.write_text(json.dumps(config, indent=1))
            _write_tool(labdir, cfg_path)
            _start_agent(ns, labdir)
    (ssh_dir / "known_hosts").write_text("\n".join(known_hosts) + "\n")

    step(f"{len(inv.gateways)} gateway sensors")
    (state / "sensors").mkdir(exist_ok=True)
    for host in inv.gateways:
        labdir = _lab_dir(host)
        (labdir / "sensor.json").write_text(json.dumps({
            "sensor": host.name, "ports": lab.worm.ports, "marker": PAYLOAD_MAGIC.decode().strip(),
            "eve": str(state / "sensors" / "eve.json")}))
        _start_sensor(plan.ns_of(host.name), labdir)

    _crisis_cell(inv, state, step)
    _start_mailbox(inv, state, step)

    step("waiting for every host's sshd and services")
    _wait_ready(inv)


def ios_interfaces(plan: LabPlan, host: Host) -> dict[str, str]:
    """An emulated IOS gateway's interfaces, in the inventory's order, on its namespace's links: the
    uplink to the core first, then one bridge per segment in the area's order."""
    bridges = [b.name for b in plan.bridges if b.ns == plan.ns_of(host.name)]
    return dict(zip(host.ios_interfaces, ["up0", *bridges], strict=True))


def _ios_device(inv: Inventory, plan: LabPlan, host: Host, labdir: Path, ssh_dir: Path) -> str:
    """An emulated IOS device's state: its host key and its configuration before the incident (hostname,
    archive, interfaces with their addresses, no access list). Returns its known_hosts line."""
    from orchestrator.lab.ios_cli import Config, Interface
    from orchestrator.lab.ios_server import save_config

    state = labdir / "ios"
    state.mkdir(exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", host.name, "-f",
         str(state / "host_key")])
    addresses = {"up0": host.uplink} | {b.name: b.address for b in plan.bridges if b.ns == plan.ns_of(host.name)}
    interfaces = {}
    for ios_name, linux in ios_interfaces(plan, host).items():
        address = addresses[linux]
        interfaces[ios_name] = Interface(ios_name, f"{address.ip} {address.netmask}" if address else "",
                                         description=f"lab link {linux}")
    save_config(state / "config.json", Config(hostname=host.name, interfaces=interfaces, archive_path="flash:archive"))
    shutil.copy(state / "config.json", state / "config.boot.json")
    (state / "interfaces.json").write_text(json.dumps(ios_interfaces(plan, host)))
    key_type, key_body = (state / "host_key.pub").read_text().split()[:2]
    return f"{host.address} {key_type} {key_body}"


def _start_ios(ns: str, labdir: Path, ssh_dir: Path) -> None:
    """The emulated IOS device of an IOS gateway, on port 22 of every address of its namespace."""
    state = labdir / "ios"
    mapping = json.loads((state / "interfaces.json").read_text())
    out = open(labdir / "ios.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "orchestrator.lab.ios_server", "--state", str(state),
         "--listen", "0.0.0.0:22", "--authorized-key", str(ssh_dir / "authorized_keys"),
         "--minute", str(IOS_MINUTE), *[f"--interface={i}={linux}" for i, linux in mapping.items()]],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", start_new_session=True,
    )
    out.close()
    (labdir / "ios.pid").write_text(f"{proc.pid}\n")


def node_tmp(host: Host) -> Path:
    """An execution node's own /tmp (where its worker keeps job directories), as this machine sees it."""
    return _lab_dir(host) / "tmp"


def _start_sshd(ns: str, labdir: Path, private_tmp: Path | None = None) -> None:
    """The host's sshd; with ``private_tmp``, every session it serves sees that directory as /tmp (an
    execution node's job directories stay its own: lab hosts share this machine's filesystem, and two
    labs' nodes, or a test's leftovers, would otherwise find each other's)."""
    prologue = _mask_shell_rc()
    if private_tmp is not None:
        private_tmp.mkdir(mode=0o1777, exist_ok=True)
        private_tmp.chmod(0o1777)
        prologue = f"mount --bind {shlex.quote(str(private_tmp))} /tmp && {prologue}"
    ns_exec(ns, ["sh", "-c", prologue, "sh",
                 "/usr/sbin/sshd", "-f", str(labdir / "sshd_config"), "-E", str(labdir / "sshd.log")])


def _start_agent(ns: str, labdir: Path) -> None:
    out = open(labdir / "agent.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "orchestrator.lab.agent",
         "--config", str(labdir / "agent.json"), "run"],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", start_new_session=True,
    )
    out.close()
    (labdir / "agent.pid").write_text(f"{proc.pid}\n")


MAILBOX_PORT = 2525


def _crisis_cell(inv: Inventory, state: Path, step: Step) -> None:
    """The lab's crisis-cell directory, when the inventory names a file in the lab's state directory: a
    crisis lead, the CISO, the external CERT and each area's business owner and IT contact, reviewed
    today (the lab's cell is as fresh as the lab). Addresses in the reserved example domain: the lab's
    mailbox is the only place they go."""
    if not inv.crisis_cell_file or not Path(inv.crisis_cell_file).is_relative_to(state):
        return
    today = time.strftime("%Y-%m-%d", time.gmtime())

    def who(role: str, name: str, mail: str) -> dict[str, str]:
        return {"role": role, "name": name, "email": f"{mail}@irm-lab.example", "phone": "+33 1 00 00 00 00",
                "reviewed_at": today}

    cell: dict[str, Any] = {
        "max_age_days": 90,
        "contacts": [who("crisis_lead", "Lab crisis lead", "crisis-lead"), who("ciso", "Lab CISO", "ciso"),
                     who("external_cert", "Lab external CERT", "cert")],
        "areas": {a: [who("business_owner", f"{a} business owner", f"owner.{a}"),
                      who("it_contact", f"{a} IT contact", f"it.{a}")] for a in inv.areas}}
    Path(inv.crisis_cell_file).write_text(yaml.safe_dump(cell, sort_keys=False))
    step(f"crisis-cell directory ({3 + 2 * len(inv.areas)} entries)")


def _start_mailbox(inv: Inventory, state: Path, step: Step) -> None:
    """The lab's crisis-cell mailbox (``orchestrator.lab.mailbox``) on the SOC's lab address, when the
    inventory sends mail there."""
    smtp, soc = inv.notify.smtp, inv.soc
    if smtp is None or soc is None or smtp.host != str(soc.address):
        return
    out = open(state / "mailbox.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.lab.mailbox", "--listen", f"{smtp.host}:{smtp.port}",
         "--dir", str(state / "mailbox")],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", start_new_session=True)
    out.close()
    (state / "mailbox.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while not tcp_open(smtp.host, smtp.port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"the lab's mailbox did not start on {smtp.host}:{smtp.port} (see {state / 'mailbox.log'})")
        time.sleep(0.05)
    step(f"crisis-cell mailbox on {smtp.host}:{smtp.port}")


def _start_sensor(ns: str, labdir: Path) -> None:
    """The gateway's network sensor (``orchestrator.lab.sensor``): Suricata EVE alerts from the packets
    that cross it."""
    out = open(labdir / "sensor.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "orchestrator.lab.sensor", "--config",
         str(labdir / "sensor.json")],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", start_new_session=True,
    )
    out.close()
    (labdir / "sensor.pid").write_text(f"{proc.pid}\n")


def reboot(inv: Inventory, host_name: str, load_saved: bool = True) -> str:
    """Simulate a reboot of one lab host: every process in its namespace dies (sshd, services, worm,
    dead-man timers, sessions), its ruleset is flushed, then what a real boot loads is loaded: irm's
    last confirmed table (``firewall/confirmed.nft``, what irm's boot unit loads on a real Linux host)
    unless ``load_saved`` is false (a device that lost its saved configuration), then sshd and services."""
    lab = _require_lab(inv)
    host = inv.hosts.get(host_name)
    if host is None or host.kind == "soc" or host not in inv.managed_hosts:
        raise LabError(f"'{host_name}' is not a lab host that can be rebooted")
    ns = f"{lab.name}-{host_name}"
    if ns not in existing_namespaces(lab.name):
        raise LabError(f"lab host '{host_name}' is not up (no namespace {ns})")
    inside = run(["ip", "netns", "pids", ns]).stdout.split()
    killed = _kill(int(p) for p in inside)
    ns_exec(ns, ["nft", "flush", "ruleset"])
    saved = Path(host.state_dir) / "firewall" / "confirmed.nft"
    loaded = "nothing (its saved configuration is lost)"
    if load_saved and saved.exists():
        ns_exec(ns, ["nft", "-f", str(saved)])
        loaded = f"irm's confirmed table ({saved})"
    elif load_saved:
        loaded = "no irm table (none was ever confirmed)"
    labdir = _lab_dir(host)
    if host.boundary_kind == "cisco_ios":
        # the emulated device boots on its saved configuration (it saves every change), or on the one it had
        # before the incident when that is lost
        ios = labdir / "ios"
        if not load_saved:
            (ios / "startup.json").unlink(missing_ok=True)
            (ios / "config.json").write_text((ios / "config.boot.json").read_text())
            loaded = "its configuration from before the incident (the saved one is lost)"
        elif (ios / "startup.json").exists():
            loaded = "its startup-config (saved by write memory)"
        else:
            (ios / "config.json").write_text((ios / "config.boot.json").read_text())
            loaded = "its configuration from before the incident (nothing was saved since)"
        _start_ios(ns, labdir, Path(lab.state_dir) / "ssh")
    else:
        _start_sshd(ns, labdir, node_tmp(host) if host.runs_jobs else None)
    if (labdir / "agent.json").exists():
        _start_agent(ns, labdir)
    if (labdir / "sensor.json").exists():
        _start_sensor(ns, labdir)
    checks = [(str(host.address), 22), *((str(host.address), s.port) for s in host.services)]
    deadline = time.monotonic() + 20
    while not all(tcp_open(a, p) for a, p in checks):
        if time.monotonic() > deadline:
            raise LabError(f"{host_name} did not come back within 20s after its reboot")
        time.sleep(0.1)
    return f"rebooted: {len(killed)} process(es) killed, ruleset flushed, loaded {loaded}, sshd and services started"


def _write_tool(labdir: Path, cfg_path: Path) -> None:
    """The host's remediation tool box (lab package manager, antivirus, safe check), for SSH commands."""
    tool = labdir / "bin" / "irm-lab-tool"
    tool.parent.mkdir(exist_ok=True)
    exec_line = f"exec {shlex.quote(sys.executable)} -m orchestrator.lab.agent --config {shlex.quote(str(cfg_path))}"
    tool.write_text(f"#!/bin/sh\n# irm lab: this host's package manager, antivirus and safe check (agent.py)\n"
                    f'{exec_line} "$@"\n')
    tool.chmod(0o755)


def _mask_shell_rc() -> str:
    """A shell prologue that hides the lab user's ~/.bashrc from the lab sshd, then execs "$@".

    Lab hosts share this machine's filesystem, so every SSH command into a lab host would run the
    controller user's own shell start-up (bash reads ~/.bashrc for commands sent over SSH; on a
    developer machine it may, say, initialise pyenv, ~0.1 s of CPU per command). No real server runs
    the operator's shell start-up; the lab masks it with a bind mount in the sshd's own mount
    namespace (``ip netns exec`` gives each command one), which vanishes with the sshd.
    """
    rc = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".bashrc"
    mask = f"mount --bind /dev/null {shlex.quote(str(rc))} && " if rc.is_file() else ""
    return f'{mask}exec "$@"'


def _sshd_config(host: Host, labdir: Path, ssh_dir: Path) -> str:
    return f"""\
# sshd of lab host {host.name}: written by irm lab up; never the machine's own sshd config.
ListenAddress 0.0.0.0
Port 22
HostKey {labdir / 'ssh_host_ed25519_key'}
PidFile {labdir / 'sshd.pid'}
AuthorizedKeysFile {ssh_dir / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 64:30:128
LogLevel ERROR
Subsystem sftp internal-sftp
"""


def _agent_config(inv: Inventory, plan: LabPlan, lab: Any, host: Host, targets: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "lab": plan.lab,
        "host": host.name,
        "address": str(host.address),
        "netns": plan.ns_of(host.name),
        "state_dir": host.state_dir,
        "lab_dir": str(_lab_dir(host)),
        "av_log": host.av_log or str(Path(host.state_dir) / "av.log"),
        "prefixes": [str(p) for p in plan.prefixes],
        "vulnerable": host.vulnerable and host.kind == "area",
        "services": [s.model_dump() for s in host.services],
        "worm_blocks": list(host.worm_blocks),
        "worm": lab.worm.model_dump(),
        "targets": targets,
        "python": sys.executable,
    }


def tcp_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_ready(inv: Inventory, deadline_s: float = 20.0) -> None:
    """Every host's sshd and services answer from where the host is managed: the SOC, or for an area
    reached through its execution node, that node's namespace."""
    assert inv.lab is not None
    checks: dict[str | None, list[tuple[str, int]]] = {}
    for host in inv.managed_hosts:
        manager = inv.manager_of(host)
        mine = checks.setdefault(manager.name if manager else None, [])
        mine.append((str(host.address), 22))
        mine += [(str(host.address), s.port) for s in host.services]
    lab = inv.lab.name

    def still_closed(item: tuple[str | None, list[tuple[str, int]]]) -> list[tuple[str, int]]:
        source, targets = item
        if source is None:
            with ThreadPoolExecutor(max_workers=16) as inner:
                return [c for c, ok in zip(targets, inner.map(lambda c: tcp_open(*c), targets), strict=True)
                        if not ok]
        proc = ns_exec(f"{lab}-{source}", [sys.executable, "-m", "orchestrator.lab.probe", "0.5",
                                           *(f"{a}:{p}" for a, p in targets)], check=False)
        try:
            seen = json.loads(proc.stdout)
        except ValueError:
            return targets
        return [c for c in targets if seen.get(f"{c[0]}:{c[1]}") != "open"]

    deadline = time.monotonic() + deadline_s
    pending = checks
    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending and time.monotonic() < deadline:
            pending = {s: left for s, left in zip(pending, pool.map(still_closed, pending.items()), strict=True)
                       if left}
            if pending:
                time.sleep(0.1)
    if pending:
        names = ", ".join(f"{a}:{p}" + (f" (from {s})" if s else "") for s, left in pending.items() for a, p in left)
        raise LabError(f"lab hosts did not answer from where they are managed within {deadline_s:.0f}s: {names}")


# ------------------------------------------------------------------------------------------------
# down


@dataclass
class DownReport:
    namespaces: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # the SOC's unreachable routes removed
    state_dir_removed: str | None = None
    warnings: list[str] = field(default_factory=list)


def _kill(candidates: Iterable[int]) -> list[int]:
    """SIGTERM, then SIGKILL whatever still runs after two seconds; all PIDs at once."""
    spared = _ancestors()
    pids = [p for p in candidates if p not in spared]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2.0
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line names the path ``text`` (the lab state dir) or a path under it: ssh masters,
    stray agents. Another lab's directory that merely starts with the same characters is not it."""
    found = []
    needle = text.rstrip("/").encode()
    spared = _ancestors()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if needle + b"/" in cmdline or needle + b"\x00" in cmdline or cmdline.endswith(needle):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _ancestors() -> set[int]:
    """This process and its parents: never killed, whatever their command line says."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def down(inv: Inventory) -> DownReport:
    preflight()
    lab = _require_lab(inv)
    report = DownReport()
    state = Path(lab.state_dir)
    namespaces: set[str] = set(existing_namespaces(lab.name))
    root_ifaces: set[str] = {f"{lab.name}-soc"}
    record: dict[str, Any] = {}
    if (state / PLAN_FILE).exists():
        try:
            record = json.loads((state / PLAN_FILE).read_text())
        except ValueError:
            report.warnings.append(f"{state / PLAN_FILE} is unreadable; tearing down from the inventory")
    recorded_ns = [n["name"] for n in record.get("plan", {}).get("namespaces", [])]
    recorded_if = [lk["a_if"] for lk in record.get("plan", {}).get("links", []) if lk.get("a_ns") is None]
    root_unreachable = [str(r["prefix"]) for r in record.get("plan", {}).get("routes", [])
                        if r.get("ns") is None and r.get("via") is None]
    try:
        plan = plan_lab(inv)
        planned_ns = [n.name for n in plan.namespaces]
        root_ifaces.update(plan.root_ifaces)
        root_unreachable += [str(r.prefix) for r in plan.routes if r.ns is None and r.via is None]
    except LabError:
        planned_ns = []
    namespaces.update(n for n in [*recorded_ns, *planned_ns] if n in existing_namespaces(lab.name))
    root_ifaces.update(recorded_if)

    pids: set[int] = set(processes_mentioning(str(state)))
    for ns in sorted(namespaces):
        pids.update(int(p) for p in run(["ip", "netns", "pids", ns], check=False).stdout.split())
    report.processes = _kill(sorted(pids))
    for ns in sorted(namespaces):
        if run(["ip", "netns", "delete", ns], check=False).returncode == 0:
            report.namespaces.append(ns)
        else:
            report.warnings.append(f"namespace {ns} could not be deleted")
    for iface in sorted(root_ifaces):
        if _iface_exists(iface):
            run(["ip", "link", "delete", iface], check=False)
            report.interfaces.append(iface)
    # the SOC's unreachable routes (areas reached through their execution node) have no link to go with
    for prefix in sorted(set(root_unreachable)):
        if run(["ip", "route", "del", "unreachable", prefix], check=False).returncode == 0:
            report.routes.append(prefix)
    if record.get("created_run_sshd") and Path("/run/sshd").is_dir() and not _system_sshd_running():
        shutil.rmtree("/run/sshd", ignore_errors=True)
    if state.exists():
        if (state / MARKER_FILE).exists():
            shutil.rmtree(state)
            report.state_dir_removed = str(state)
            for parent in record.get("created_parents", []):  # deepest first, only if left empty
                try:
                    Path(parent).rmdir()
                except OSError:
                    break
        else:
            report.warnings.append(f"{state} has no {MARKER_FILE} marker: left in place")
    return report


def _system_sshd_running() -> bool:
    return Path("/run/sshd.pid").exists()


# ------------------------------------------------------------------------------------------------
# status, infection


@dataclass
class HostState:
    host: Host
    namespace: bool
    sshd: bool
    agent: bool | None
    infection: dict[str, Any] | None


@dataclass
class LabStatus:
    lab: str
    state_dir: str
    up: bool
    hosts: dict[str, HostState]


def _pid_alive_from(path: Path) -> bool:
    try:
        return _alive(int(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False


def read_infection(host: Host) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((Path(host.state_dir) / "infected.json").read_text())
        return data
    except (OSError, ValueError):
        return None


def status(inv: Inventory) -> LabStatus:
    lab = _require_lab(inv)
    present = set(existing_namespaces(lab.name))
    hosts: dict[str, HostState] = {}
    for host in inv.managed_hosts:
        labdir = _lab_dir(host)
        has_agent = (labdir / "agent.json").exists()
        hosts[host.name] = HostState(
            host=host,
            namespace=f"{lab.name}-{host.name}" in present,
            sshd=_pid_alive_from(labdir / ("ios.pid" if host.boundary_kind == "cisco_ios" else "sshd.pid")),
            agent=_pid_alive_from(labdir / "agent.pid") if has_agent else None,
            infection=read_infection(host),
        )
    up_now = (Path(lab.state_dir) / PLAN_FILE).exists() and bool(present)
    return LabStatus(lab=lab.name, state_dir=lab.state_dir, up=up_now, hosts=hosts)


def require_up(inv: Inventory) -> LabStatus:
    st = status(inv)
    if not st.up:
        raise LabError(f"lab '{st.lab}' is not up: run 'irm lab up --inventory {inv.source}' first")
    return st


def infect(inv: Inventory, host_name: str) -> dict[str, Any]:
    """Seed an infection on one vulnerable area host; returns its infection record."""
    host = inv.host(host_name)
    st = require_up(inv)
    if host.kind != "area":
        raise UnknownNameError(
            f"host '{host_name}' is a {host.kind}, not an area host: the lab worm infects area hosts")
    if not host.vulnerable:
        raise LabError(f"host '{host_name}' is not vulnerable (irm_lab_vulnerable is false)")
    current = st.hosts[host_name].infection
    if current:
        raise LabError(f"host '{host_name}' is already infected since {current['since']}")
    cfg = _lab_dir(host) / "agent.json"
    proc = ns_exec(f"{st.lab}-{host_name}", [sys.executable, "-m", "orchestrator.lab.agent",
                                             "--config", str(cfg), "seed"], check=False)
    if proc.returncode != 0:
        raise LabError(f"seeding {host_name} failed: {(proc.stderr or proc.stdout).strip()}")
    infection = read_infection(host)
    assert infection is not None
    return infection


def fix_by_hand(inv: Inventory, host_name: str) -> str:
    """What a technician does at one host's console (for manual remediation in the lab): stop the
    worm and its watchdog, remove the infection marker, install the fixed package."""
    host = inv.host(host_name)
    st = require_up(inv)
    if host.kind != "area":
        raise LabError(f"host '{host_name}' is a {host.kind}, not an area host")
    proc = ns_exec(f"{st.lab}-{host_name}", [str(_lab_dir(host) / "bin" / "irm-lab-tool"), "handfix"], check=False)
    if proc.returncode != 0:
        raise LabError(f"fixing {host_name} by hand failed: {(proc.stderr or proc.stdout).strip()}")
    return " ".join(proc.stdout.split())


@dataclass
class Infection:
    host: str
    area: str | None
    segment: str | None
    since: str
    source_address: str
    source_host: str | None


def infections(inv: Inventory) -> list[Infection]:
    found = []
    for host in inv.managed_hosts:
        rec = read_infection(host)
        if rec:
            found.append(Infection(host=host.name, area=host.area, segment=host.segment, since=rec["since"],
                                   source_address=rec.get("source_address", "?"), source_host=rec.get("source_host")))
    return sorted(found, key=lambda i: i.since)
