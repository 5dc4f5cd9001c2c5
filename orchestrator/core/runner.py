"""The runner adapter: the one module that imports ``ansible_runner``.

Runs a playbook against an inventory (extra vars, check/diff mode on demand, limit, tags), turns the
runner's event stream into irm's own per-host results, and publishes each task and host result to the
run's event stream (``core.stream``) when one is given: the live views and any other listener see them.
Playbooks always run with the project's ``ansible.cfg`` and with this interpreter's ``bin/`` first on
PATH, so ``ansible-playbook`` is the one installed beside irm.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.core import paths
from orchestrator.core.errors import RunnerError, UserError
from orchestrator.core.safetext import redact, scrub_failure
from orchestrator.core.stream import EventStream, HostReported, TaskStarted


class HostResult(BaseModel):
    """What one playbook run did on one host (nornir-style: a result per host)."""

    model_config = ConfigDict(extra="forbid")

    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    failures: list[str] = Field(default_factory=list)
    diffs: list[dict[str, Any]] = Field(default_factory=list)
    would: list[str] = Field(default_factory=list)  # check mode: the tasks that would change, or would run
    facts: dict[str, Any] = Field(default_factory=dict)  # irm_* values returned by irm's modules or set_fact

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    playbook: str
    status: str
    rc: int | None
    check: bool
    hosts: dict[str, HostResult] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)  # the job's events, redacted (``job_event``)
    via: str = "ansible-playbook"  # or "warm": run over held SSH connections (``core.warm``), "ios-direct"
    # the IOS devices the runner itself read back and compared with the plan in the applying session
    # (``core.ios_direct``): the applier does not read them again
    read_back: list[str] = Field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and not any(h.failed or h.unreachable for h in self.hosts.values())

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h.host for h in self.hosts.values() if h.failed or h.unreachable)


@dataclass(frozen=True)
class ExecutionNode:
    """Where a play runs when not on the controller: a host reached over SSH that has irm's runtime (the
    same ansible-core, collections, ansible-runner, playbooks and collection paths as the controller,
    ``irm node install``). The run goes ``ansible-runner transmit`` (here) | ``ssh NODE ansible-runner
    worker`` (there) | ``ansible-runner process`` (here), the streaming interface AWX's execution nodes
    use; the worker unpacks the job into a temporary directory it deletes when the job ends."""

    name: str
    address: str
    user: str
    port: int = 22
    ssh_options: tuple[str, ...] = ()  # e.g. ("-i", KEY, "-o", "UserKnownHostsFile=...")
    runner: str = "ansible-runner"  # the node's ansible-runner (path or name on its PATH)
    connect_timeout: int = 10

    def ssh_command(self, remote: str) -> list[str]:
        return [*self.ssh_base(), remote]

    def ssh_base(self) -> list[str]:
        """The ssh command line that reaches the node, without the remote command."""
        return ["ssh", "-p", str(self.port), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", *self.ssh_options,
                f"{self.user}@{self.address}"]


class PlaybookRunner(Protocol):
    """What the phases need to run a play: ``run_playbook``'s signature. The phases receive one (the
    real runner by default), so tests can hand them a fake that records what would run."""

    def __call__(self, playbook: str | Path, inventory: str | Path, *, extravars: dict[str, Any] | None = None,
                 check: bool = False, diff: bool = False, limit: str | None = None, tags: list[str] | None = None,
                 forks: int | None = None, events: EventStream | None = None,
                 node: ExecutionNode | None = None) -> RunResult: ...


class ManagementProber(Protocol):
    """``mgmt_probe.probe``: (the endpoints that answered, the hosts none of whose endpoints answered)."""

    def __call__(self, endpoints: list[dict[str, Any]],
                 timeout: float = 3.0) -> tuple[list[dict[str, Any]], set[str]]: ...


_EVENT_FIELDS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


def _failure_message(res: dict[str, Any]) -> str:
    msg = res.get("msg") or res.get("stderr") or res.get("reason") or "failed"
    return scrub_failure(str(msg))


# what a job event keeps: where and what, never the task's arguments, extra vars or a module's output
_EVENT_KEEP = ("play", "task", "host")


def job_event(event: dict[str, Any]) -> dict[str, Any]:
    """One ansible-runner event, redacted for the journal's evidence: its kind, order and time, the
    play, task and host, whether it changed something, and a failure's message (scrubbed of control
    characters, bounded; vault values are masked when the run ends). No arguments, no extra vars, no
    module output: a policy, a plan or a secret never lands here."""
    data = event.get("event_data", {}) or {}
    res = data.get("res", {}) or {}
    kept: dict[str, Any] = {"event": str(event.get("event", "")), "counter": event.get("counter"),
                            "created": event.get("created")}
    kept |= {k: str(data[k]) for k in _EVENT_KEEP if data.get(k)}
    if isinstance(res, dict) and "changed" in res:
        kept["changed"] = bool(res.get("changed"))
    if kept["event"] in ("runner_on_failed", "runner_on_unreachable"):
        kept["msg"] = _failure_message(res)[:500]
    return kept


class Collector:
    """Turns runner events into ``HostResult``s; runs on ansible-runner's event thread."""

    def __init__(self, stream: EventStream | None, check: bool = False) -> None:
        self.hosts: dict[str, HostResult] = {}
        self.stream = stream
        self.check = check
        self.lock = threading.Lock()
        self.play = ""
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        if kind and kind != "verbose":
            with self.lock:
                self.events.append(job_event(event))
        data = event.get("event_data", {}) or {}
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play", ""))
        elif kind == "playbook_on_task_start" and self.stream:
            self.stream.publish(TaskStarted(self.play, str(data.get("task", ""))))
        field = _EVENT_FIELDS.get(kind)
        host = data.get("host")
        if field and host:
            res = data.get("res", {}) or {}
            with self.lock:
                hr = self.hosts.setdefault(host, HostResult(host=host))
                if kind == "runner_on_failed" and data.get("ignore_errors"):
                    field = "ok"
                setattr(hr, field, getattr(hr, field) + 1)
                if kind == "runner_on_ok" and res.get("changed"):
                    hr.changed += 1
                    if self.check:
                        hr.would.append(str(data.get("task", "?")))
                elif self.check and kind == "runner_on_skipped" and "check mode" in str(res.get("msg", "")):
                    hr.would.append(f"{data.get('task', '?')} (a command: not run in check mode)")
                if field in ("failed", "unreachable"):
                    hr.failures.append(f"{data.get('task', '?')}: {_failure_message(res)}")
                hr.facts.update({k: v for k, v in res.items() if k.startswith("irm_")})
                facts = res.get("ansible_facts") or {}  # irm_* set by set_fact (Windows tasks)
                hr.facts.update({k: v for k, v in facts.items() if k.startswith("irm_")})
                diff = res.get("diff")
                if diff:
                    hr.diffs.extend(d for d in (diff if isinstance(diff, list) else [diff]) if d)
                commands = res.get("commands")
                if self.check and isinstance(commands, list) and commands:
                    # a network resource module in check mode: the configuration lines it would send
                    hr.diffs.append({"before": "", "after": "".join(f"{c}\n" for c in commands),
                                     "before_header": "device", "after_header": str(data.get("task", "commands"))})
            if self.stream:
                self.stream.publish(HostReported(hr, kind))
        return True  # keep the event in runner's artifacts


_CONNECTIONS: str | None = None
CONTROL_ROOT = "~/.ansible/cp"  # Ansible's own place for control sockets: a short path (a socket's is bounded)


def connection_dir() -> str:
    """This irm process's own directory for Ansible's SSH control sockets and network_cli's persistent
    connections (0700, under ``~/.ansible/cp``, removed when irm exits): the stages of one run reuse their
    connections, and no other run, irm or tool ever talks through them (it may reach another host at the
    same address: an execution node's network, another lab)."""
    global _CONNECTIONS
    if _CONNECTIONS is None:
        _CONNECTIONS = private_dir("irm-")
        atexit.register(_remove_connection_dirs, _CONNECTIONS)
    return _CONNECTIONS


_PRIVATE = re.compile(r"^irmw?-(\d+)-")


def private_dir(prefix: str) -> str:
    """A new 0700 directory for this process's control sockets under ``CONTROL_ROOT``, named
    ``<prefix><pid>-<random>``, after removing those of irm processes that are gone (a killed run never
    removes its own: its sockets are dead, the directory only clutters)."""
    root = Path(CONTROL_ROOT).expanduser()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in root.iterdir():
        found = _PRIVATE.match(entry.name)
        if found and not _running(int(found.group(1))) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def node_connection_dir(node: str) -> str:
    """Where an execution node keeps this run's SSH control sockets: in the node's own ``~/.ansible/cp``
    (where the node shares this machine's filesystem, as in the lab, removed with ``connection_dir``)."""
    return f"{CONTROL_ROOT}/{Path(connection_dir()).name}-{node}"


def _remove_connection_dirs(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    for node_dir in Path(path).parent.glob(f"{Path(path).name}-*"):
        shutil.rmtree(node_dir, ignore_errors=True)


def runner_env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {
        "ANSIBLE_SSH_CONTROL_PATH_DIR": connection_dir(),
        "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR": f"{connection_dir()}/pc",
        "ANSIBLE_CONFIG": str(paths.ANSIBLE_CFG),
        "ANSIBLE_COLLECTIONS_PATH": str(paths.COLLECTIONS),
        "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "/usr/bin:/bin")]),
        "ANSIBLE_NOCOLOR": "1",
        # ansible-runner turns host key checking off unless told otherwise; irm never does (an inventory
        # may still turn it off for one host, and says why)
        "ANSIBLE_HOST_KEY_CHECKING": "True",
    }


def run_playbook(
    playbook: str | Path,
    inventory: str | Path,
    *,
    extravars: dict[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    tags: list[str] | None = None,
    forks: int | None = None,
    events: EventStream | None = None,
    node: ExecutionNode | None = None,
) -> RunResult:
    """Run one playbook and return per-host results; raises ``RunnerError`` if it could not run at all.
    With ``node``, the play runs there (``ExecutionNode``); its events come back into the same collector,
    so the results are exactly those of a local run."""
    import ansible_runner

    pb = Path(playbook) if Path(playbook).is_absolute() else paths.playbook(str(playbook))
    if not pb.exists():
        raise UserError(f"playbook {pb} does not exist")
    inv = Path(inventory).resolve()
    cmdline: list[str] = []
    if check:
        cmdline.append("--check")
    if diff or check:
        cmdline.append("--diff")
    collector = Collector(events, check)
    workdir = tempfile.mkdtemp(prefix="irm-run-")  # mode 0700, removed below whatever happens
    try:
        _write_extravars(Path(workdir), extravars or {})
        bindir = str(Path(sys.executable).parent)
        if not os.environ.get("PATH", "").startswith(bindir + os.pathsep):
            os.environ["PATH"] = runner_env()["PATH"]  # ansible-runner looks ansible-playbook up here
        try:
            with _play_signals():
                if node is None:
                    r = _run(ansible_runner, workdir, pb, inv, cmdline, limit, tags, forks, collector)
                else:
                    r = _run_on_node(ansible_runner, node, workdir, pb, inv, cmdline, limit, tags, forks, collector)
        except (OSError, ValueError, RuntimeError) as exc:  # e.g. ansible-playbook missing or not executable
            raise RunnerError(f"{pb.name} could not start{f' on {node.name}' if node else ''}: {exc}") from None
        if r.status in ("error", "timeout", "canceled") and not collector.hosts:
            out: Any = getattr(r, "stdout", None)
            tail = (str(out.read()) if hasattr(out, "read") else "").strip().splitlines()[-3:]
            raise RunnerError(f"{pb.name} could not run ({r.status}): {' | '.join(tail) or 'no output'}")
        redact_failures(collector.hosts, inventory, collector.events)
        return RunResult(playbook=pb.name, status=r.status, rc=r.rc, check=check, hosts=collector.hosts,
                         events=collector.events)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


_CANCEL = threading.Event()  # set by a signal that cancels the plays running (see _play_signals)


def _cancel_requested() -> bool:
    """ansible-runner's cancel callback for every play irm runs (so it installs no signal handler)."""
    return _CANCEL.is_set()


@contextlib.contextmanager
def _play_signals() -> Iterator[None]:
    """SIGTERM and SIGINT while a play runs. A handler irm installed itself (irm watch: stop after the
    change being made) is called and the play goes on; otherwise the play is canceled, as ansible-runner
    would (the dead-man timers restore what it changed), and irm goes on to say the stage failed. The
    handlers in place before the play are back after it: ansible-runner's own never replace them (irm
    gives it a cancel callback), so Ctrl-C and SIGTERM keep working between plays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        previous = kept.get(signal.Signals(signum))
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
        else:
            _CANCEL.set()

    _CANCEL.clear()
    for sig in kept:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in kept.items():
            if previous is not None:
                signal.signal(sig, previous)


def per_host(name: str, play: str, task: str, hosts: list[str],
             one: Callable[[str], tuple[str, dict[str, Any]]], inventory: str | Path, events: EventStream | None,
             via: str) -> RunResult:
    """A stage run without ``ansible-playbook`` (the warm path, the IOS direct path): ``one(host)`` for
    every host at once, each returning (the runner event a play would have sent, its result); the results
    go through the runner's own collector as a play's events, failures redacted as after a play."""
    collector = Collector(events)
    counter = iter(range(1, 1 << 30))
    lock = threading.Lock()

    def emit(kind: str, data: dict[str, Any]) -> None:
        with lock:
            n = next(counter)
        collector({"event": kind, "counter": n, "created": datetime.now(UTC).isoformat(),
                   "event_data": {"play": play, "task": task, **data}})

    emit("playbook_on_play_start", {})
    emit("playbook_on_task_start", {})
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        for host, (kind, res) in zip(hosts, pool.map(one, hosts), strict=True):
            emit(kind, {"host": host, "res": res})
    redact_failures(collector.hosts, inventory, collector.events)
    failed = any(h.failed or h.unreachable for h in collector.hosts.values())
    return RunResult(playbook=f"{name}.yml", status="failed" if failed else "successful", rc=2 if failed else 0,
                     check=False, hosts=collector.hosts, events=collector.events, via=via)


def redact_failures(hosts: dict[str, HostResult], inventory: str | Path,
                     events: list[dict[str, Any]] | None = None) -> None:
    """Failure messages go to the journal and its evidence: the inventory's vault values are masked in
    them (read only when something failed)."""
    failing = [hr for hr in hosts.values() if hr.failures]
    told = [e for e in events or [] if "msg" in e]
    if not failing and not told:
        return
    from orchestrator.core.inventory.load import vault_values

    try:
        secrets = vault_values(inventory)
    except UserError:
        secrets = []
    for hr in failing:
        hr.failures = redact(hr.failures, secrets)
    for event in told:
        event["msg"] = redact([event["msg"]], secrets)[0]


class _UnsafeDumper(yaml.SafeDumper):
    """Every string value is written ``!unsafe``: Ansible treats it as data, never as a template."""


def _unsafe_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Ansible's !unsafe resolves its scalar as plain YAML would: "22" would come back an int, "1.1" a
    # float, "true" a bool. Such a string (it holds no template: no brace) is written as an explicit str.
    resolved = dumper.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    if "{" not in value and resolved != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("!unsafe", value, style='"')


def _plain_keys(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.MappingNode:
    pairs = [(dumper.represent_scalar("tag:yaml.org,2002:str", str(k)), dumper.represent_data(v))
             for k, v in value.items()]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=True)


_UnsafeDumper.add_representer(str, _unsafe_str)
_UnsafeDumper.add_representer(dict, _plain_keys)


def _write_extravars(workdir: Path, extravars: dict[str, Any]) -> None:
    """Extra vars travel in a 0600 file that ansible-runner passes as ``-e @env/extravars``: never on the
    command line, where Linux caps one argument at 128 KiB (about 95 hosts of policies) and ``ps``
    shows it to every user. Ansible templates the strings of such a file; what irm passes is data (plan
    values from an outside CERT, inventory strings already templated once, operator text), so every
    string is tagged ``!unsafe``: ``{{ lookup('pipe', ...) }}`` in a plan stays those characters."""
    env = workdir / "env"
    env.mkdir(mode=0o700)
    fd = os.open(env / "extravars", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.dump(json.loads(json.dumps(extravars, default=str)), fh, Dumper=_UnsafeDumper,
                  default_flow_style=True, width=1 << 30, allow_unicode=False)


def _run(ansible_runner: Any, workdir: str, pb: Path, inv: Path, cmdline: list[str], limit: str | None,
         tags: list[str] | None, forks: int | None, collector: Collector) -> Any:
    return ansible_runner.run(
        private_data_dir=workdir,
        playbook=str(pb),
        inventory=str(inv),
        cmdline=" ".join(cmdline) or None,
        limit=limit,
        tags=",".join(tags) if tags else None,
        forks=forks,
        envvars=runner_env(),
        event_handler=collector,
        quiet=True,
        suppress_env_files=True,
        cancel_callback=_cancel_requested,
    )


def _run_kwargs(pb: Path, inv: Path, cmdline: list[str], limit: str | None, tags: list[str] | None,
                forks: int | None) -> dict[str, Any]:
    return {"playbook": str(pb), "inventory": str(inv), "cmdline": " ".join(cmdline) or None, "limit": limit,
            "tags": ",".join(tags) if tags else None, "forks": forks, "envvars": runner_env(), "quiet": True,
            "suppress_env_files": True, "cancel_callback": _cancel_requested}


def _run_on_node(ansible_runner: Any, node: ExecutionNode, workdir: str, pb: Path, inv: Path, cmdline: list[str],
                 limit: str | None, tags: list[str] | None, forks: int | None, collector: Collector) -> Any:
    """transmit | ssh NODE worker | process. The job (the private data directory: extra vars, runner
    settings) goes on ssh's stdin; the worker's stream of events and artifacts comes back on its stdout
    and is processed here, firing the collector for every event. A node that dies or cannot be reached
    ends the stream early: the events received so far have been collected, and the run is an error."""
    job_dir = f"/tmp/irm-job-{os.getpid()}-{threading.get_ident()}-{os.urandom(4).hex()}"
    remote = f"{shlex.quote(node.runner)} worker --delete --private-data-dir {job_dir}"
    with tempfile.TemporaryFile() as errors:
        result, returncode = _stream(ansible_runner, node, remote, errors, workdir, pb, inv, cmdline, limit, tags,
                                     forks, collector)
        errors.seek(0)
        why = " | ".join(errors.read().decode(errors="replace").strip().splitlines()[-3:]) or "no message"
    if returncode != 0:  # the node could not be reached, or its worker or connection died: an error
        first = result.detail + "; " if isinstance(result, _Broken) else ""
        result = _Broken(f"{first}ssh to {node.name} ended with {returncode}: {why}")
        # the worker did not end by itself: its job directory may be left on the node
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(node.ssh_command(f"rm -rf {job_dir}"), capture_output=True, timeout=20, check=False)
    return result


def _watched(collector: Collector, playbook: str) -> Callable[[dict[str, Any]], bool]:
    """The collector, with the registered node-event hooks (``core.hooks``) called on every event."""
    from orchestrator.core.hooks import HOOKS

    if not HOOKS.node_event:
        return collector

    def handler(event: dict[str, Any]) -> bool:
        kept = collector(event)
        for hook in HOOKS.node_event:
            hook(playbook, event)
        return kept

    return handler


def _stream(ansible_runner: Any, node: ExecutionNode, remote: str, errors: Any, workdir: str, pb: Path, inv: Path,
            cmdline: list[str], limit: str | None, tags: list[str] | None, forks: int | None,
            collector: Collector) -> tuple[Any, int]:
    ssh = subprocess.Popen(node.ssh_command(remote), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=errors, start_new_session=True)
    assert ssh.stdin is not None and ssh.stdout is not None

    def transmit() -> None:
        try:
            kwargs = _run_kwargs(pb, inv, cmdline, limit, tags, forks)
            # the node's own SSH control sockets, this run's only: never a controller's master, nor another
            # run's or another irm's (a shared filesystem, as in the lab, would otherwise let the node's
            # connections ride the controller's, or another lab's node's at the same addresses)
            kwargs["envvars"]["ANSIBLE_SSH_CONTROL_PATH_DIR"] = node_connection_dir(node.name)
            ansible_runner.run(private_data_dir=workdir, streamer="transmit", _output=ssh.stdin, **kwargs)
        except (OSError, ValueError):  # the node hung up while the job was being sent: the process side says so
            pass
        finally:
            with contextlib.suppress(OSError):
                ssh.stdin.close()  # type: ignore[union-attr]

    sender = threading.Thread(target=transmit, daemon=True)
    sender.start()
    processed = Path(tempfile.mkdtemp(prefix="irm-process-"))  # 0700, removed below
    result: Any
    try:
        result = ansible_runner.run(private_data_dir=str(processed), streamer="process", _input=ssh.stdout,
                                    event_handler=_watched(collector, pb.name), quiet=True,
                                    cancel_callback=_cancel_requested)
    except Exception as exc:  # a stream cut mid-way: whatever ansible-runner raises on a torn stream
        result = _Broken(f"the stream from {node.name} broke: {exc.__class__.__name__}: {exc}")
    finally:
        sender.join(timeout=30)
        with contextlib.suppress(OSError):
            ssh.stdout.close()
        try:
            ssh.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ssh.kill()
            ssh.wait()
        shutil.rmtree(processed, ignore_errors=True)
    return result, ssh.returncode


class _Broken:
    """A node run that did not complete: status ``error``, and why (shown in place of runner's stdout)."""

    def __init__(self, detail: str) -> None:
        self.status, self.rc, self.detail = "error", None, detail
        self.stdout = io.StringIO(detail)
