"""The warm path: a boundary's commit-confirmed nftables change without starting ``ansible-playbook``.

A play costs seconds before its first task (the interpreter, the inventory, the collection, the
templating of every option); at worm speed those seconds are hosts. ``irm watch`` prepares ahead, once:
a play that changes nothing (``playbooks/warm.yml``, the role's ``warm`` entry point) resolves each
boundary's options and SSH connection exactly as the role would (``irm contain`` resolves the same values
without a play: ``resolve``, ``core.warm_resolve``), and irm opens one SSH master connection
per boundary that it holds open (OpenSSH's ControlMaster, its sockets in a private directory, each master
a process irm started and stops by PID, and which ends with irm even when irm is killed: ``setpriv
--pdeathsig``). At the cut, ``WarmPath`` stands in for the runner: the stage's
typed extra vars (``StageVars``) go, per host and in parallel, through the collection's one sequence
(``irm_nft_sequence``: render on the controller, run the host code to arm the dead-man timer and apply,
prove the management path with new connections from the SOC, confirm), the same code the ``irm_nft``
action plugin runs inside a play. Results come back as runner events through the runner's own collector,
so the applier journals, reads back and checks them exactly as after a play.

Only what is the same either way goes warm: the stages whose play only applies the firewall policy to
boundaries (``Phase.warm`` in the tables), on Linux hosts reached by SSH with a set Python, without check
mode, limits or execution nodes. Anything else, and any host that was not prepared, runs as a play
(``fallback``): never a different behaviour, only a slower one. A master that died is not needed for
correctness (``ControlMaster=no`` makes ssh connect anew), only for speed; ``refresh`` reopens it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.core import runner
from orchestrator.core.contracts import StageVars
from orchestrator.core.errors import IrmError
from orchestrator.core.paths import module_util
from orchestrator.core.stream import EventStream

PLAY = "irm warm path"
TASK = "irm.response.irm_nft (over a held SSH connection)"
REACH_TIMEOUT = 5.0  # the action plugin's default (the role passes none)
CALL_TIMEOUT = 120.0  # one host-code call: its own lock wait (60 s) and nft, with room
OPEN_TIMEOUT = 10.0


class WarmHost(BaseModel):
    """What the role's ``warm`` entry point resolved for one host (its ``irm_warm`` fact)."""

    model_config = ConfigDict(extra="ignore")

    os: str
    confirm: str
    state_dir: str
    table: str
    deadman: bool
    boot_unit: bool
    nft_path: str
    python: str
    connection: str
    address: str
    port: int
    user: str = ""
    key: str = ""
    ssh_args: str = ""
    become: bool = False
    become_method: str = "sudo"
    media_dir: str = "/etc/modprobe.d"  # removable storage: irm's modprobe rule's directory
    media_unload: bool = True  # and whether usb-storage is unloaded when blocked

    def refusal(self) -> str | None:
        """Why this host cannot go warm, or None."""
        if self.os != "linux":
            return f"firewall_policy_os is {self.os}: the warm path changes Linux hosts only"
        if self.confirm != "inline":
            return f"firewall_policy_confirm is {self.confirm}, not inline"
        if self.connection not in ("ssh", "smart"):
            return f"ansible_connection is {self.connection}, not ssh"
        if not self.python or self.python.startswith("auto"):
            return "its Python is discovered by Ansible, not set in ansible_python_interpreter"
        if self.become and self.become_method != "sudo":
            return f"becomes root by {self.become_method}: the warm path uses sudo -n only"
        if not self.address or self.address.startswith("-") or any(c.isspace() for c in self.address):
            return f"its address {self.address!r} is not a host name ssh can be given (it would read it as an option)"
        return None


class WarmPath:
    """Held SSH connections to prepared boundaries, and a runner that uses them (``__call__`` has
    ``runner.run_playbook``'s signature, so the phases take it as their ``run``)."""

    def __init__(self, inventory: str | Path, hosts: list[str], playbooks: frozenset[str],
                 fallback: Callable[..., runner.RunResult], ssh: str = "ssh",
                 unanswered: Callable[[list[dict[str, Any]], float], list[str]] | None = None,
                 held: list[str] | None = None, media: dict[str, str] | None = None,
                 resolve: Callable[[str, list[str]], dict[str, dict[str, Any]]] | None = None) -> None:
        self.inventory = str(inventory)
        self.hosts = list(dict.fromkeys(hosts))
        # the hosts whose master connection irm opens ahead and keeps (default: every one); the others
        # share one connection per stage's calls (ControlPersist, the same private directory)
        self.held = set(self.hosts if held is None else held)
        self.media = dict(media or {})  # playbook -> removable storage's state its hosts get in the same call
        # how the hosts' options are resolved: by the role's warm play (the fallback runner), or first by
        # ``resolve`` (core.warm_resolve: the same values without a play), the play when it fails
        self.resolve = resolve
        self.resolved_by = ""
        self._persisted: set[str] = set()  # hosts whose ssh left a ControlPersist master (closed by close())
        self._persisted_lock = threading.Lock()  # not the masters' lock: a call never waits for a master opening
        self._accepted = False  # the hosts' options are taken (ready / refused)
        self._preparing: threading.Thread | None = None
        self.wait_for: frozenset[str] = frozenset()  # playbooks that wait for a preparation under way
        self.playbooks = playbooks
        self.fallback = fallback
        self.ssh = ssh  # the OpenSSH client
        self.ready: dict[str, WarmHost] = {}
        self.refused: dict[str, str] = {}  # host -> why it runs as a play
        self._masters: dict[str, subprocess.Popen[bytes]] = {}
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="irm-warm-masters")
        self._lock = threading.Lock()
        # a short private path whatever TMPDIR is: a socket's path is bounded (108 bytes), %C is 40
        # characters (Ansible's own place for its control sockets, 0700)
        self.dir = Path(runner.private_dir("irmw-"))
        self._seq = module_util("irm_nft_sequence")
        self._host_code = module_util("irm_nft_host")
        self._source = Path(str(self._host_code.__file__)).read_text(encoding="utf-8")
        self._render = module_util("irm_nft_render")
        self._reach = module_util("irm_reach")
        self.used = 0  # stages run warm (for the watcher's narration and the bench)
        # the management endpoints that did not answer a new connection (the collection's irm_reach)
        self.unanswered = unanswered or (lambda endpoints, timeout: [
            text for _, text in self._reach.unanswered(endpoints, timeout)])

    # -- preparing and holding -----------------------------------------------------------------------

    def prepare(self) -> dict[str, str]:
        """Resolve every host's options as the role does (``resolve`` when given, else or when it fails one
        play that changes nothing), then open a master connection to each eligible one. Returns host ->
        why it will run as a play."""
        if not self.hosts:
            return {}
        facts: dict[str, Any] = {}
        if self.resolve is not None:  # without a play (core.warm_resolve); the play is the fallback
            try:
                facts = self.resolve(self.inventory, self.hosts)
                self.resolved_by = "in-process"
            except IrmError:
                facts = {}
        if not facts:
            try:
                result = self.fallback("warm", self.inventory, extravars={"irm_targets": ",".join(self.hosts)})
            except (IrmError, OSError) as exc:
                self.refused = {h: f"its options could not be resolved ({exc})" for h in self.hosts}
                return dict(self.refused)
            self.resolved_by = "play"
            for host in self.hosts:
                found = result.hosts.get(host)
                fact = found.facts.get("irm_warm") if found else None
                facts[host] = fact if isinstance(fact, dict) else {"error": "; ".join(found.failures)
                                                                   if found and found.failures else "no result"}
        self.accept(facts)
        self.refresh()
        return dict(self.refused)

    def accept(self, facts: dict[str, Any]) -> None:
        """Take each host's resolved options (``WarmHost``): the eligible ones are ready to go warm, the
        others are refused with why."""
        for host in self.hosts:
            fact = facts.get(host)
            if not isinstance(fact, dict) or "error" in fact:
                self.refused[host] = "its options could not be resolved (" + (
                    str(fact["error"]) if isinstance(fact, dict) else "no result") + ")"
                continue
            try:
                warm = WarmHost.model_validate(fact)
            except ValidationError as exc:
                self.refused[host] = f"its options are not usable: {exc.errors()[0]['msg']}"
                continue
            why = warm.refusal()
            if why:
                self.refused[host] = why
            else:
                self.ready[host] = warm
        self._accepted = True

    def _ssh(self, warm: WarmHost, *args: str) -> list[str]:
        cmd = [self.ssh, "-o", "BatchMode=yes", "-o", f"ControlPath={self._socket(warm)}",
               "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", "-p", str(warm.port)]
        if warm.key:
            cmd += ["-i", warm.key]
        if warm.user:
            cmd += ["-l", warm.user]
        return cmd + shlex.split(warm.ssh_args) + list(args)

    def _socket(self, warm: WarmHost) -> Path:
        """The host's control socket: named by irm (as ssh's %C would be, a digest of where it connects), so
        that a master's readiness is its socket's existence, seen without starting a process."""
        where = f"{warm.address}\0{warm.port}\0{warm.user}\0{warm.key}\0{warm.ssh_args}".encode()
        return self.dir / hashlib.sha1(where, usedforsecurity=False).hexdigest()[:20]

    def _alive(self, host: str) -> bool:
        warm = self.ready[host]
        proc = self._masters.get(host)
        if proc is None or proc.poll() is not None:
            return False
        check = subprocess.run(self._ssh(warm, "-O", "check", warm.address), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=OPEN_TIMEOUT, check=False)
        return check.returncode == 0

    def refresh(self) -> dict[str, bool]:
        """Every prepared host's master connection (the held ones), reopened where it died, all at once:
        host -> open."""
        out: dict[str, bool] = {}
        with self._lock:
            todo = []
            for host, warm in self.ready.items():
                if host not in self.held:
                    continue
                if self._alive(host):
                    out[host] = True
                    continue
                self._stop(host)
                cmd = self._ssh(warm, "-o", "ControlMaster=yes", "-N", warm.address)
                if shutil.which("setpriv"):  # the master ends with this process, even when it is killed
                    cmd = ["setpriv", "--pdeathsig", "TERM", "--", *cmd]
                # started by the path's own spawning thread, which lives until close(): the parent-death
                # signal follows the thread that forked, and a preparing thread ends as soon as it is done
                self._masters[host] = self._spawner.submit(
                    subprocess.Popen, cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True).result()
                todo.append(host)
            deadline = time.monotonic() + OPEN_TIMEOUT
            while todo and time.monotonic() < deadline:
                for host in [h for h in todo if self._masters[h].poll() is not None
                             or self._socket(self.ready[h]).exists()]:
                    todo.remove(host)
                    out[host] = self._masters[host].poll() is None
                time.sleep(0.05)
            out |= {h: self._alive(h) for h in todo}
        return out

    def start(self, hosts: list[str], held: list[str], wait_for: frozenset[str], defer: bool = False,
              resolved: dict[str, dict[str, Any]] | None = None) -> None:
        """Prepare these hosts in the background (``prepare``), holding masters to ``held``: stages of the
        plays in ``wait_for`` wait for it, any other stage runs as its play meanwhile. ``defer``: once the
        first stage has run (its play then has the machine to itself: the first cut is not slowed).
        ``resolved``: the hosts' options, resolved ahead (``warm_resolve.cached``): taken now, so every
        stage goes warm from the first; only the masters are opened in the background (a call made
        before its master is up connects on its own)."""
        self.hosts = list(dict.fromkeys(hosts))
        self.held = set(held)
        self.wait_for = wait_for
        if resolved is not None:
            self.resolved_by = "kept"
            self.accept(resolved)
            self._preparing = threading.Thread(target=self.refresh, name="irm-warm-hold", daemon=True)
            self._preparing.start()
            return
        self._preparing = threading.Thread(target=self.prepare, name="irm-warm-prepare", daemon=True)
        if not defer:
            self._preparing.start()

    def _start_deferred(self) -> None:
        if self._preparing is not None and self._preparing.ident is None:
            self._preparing.start()

    def _prepared(self, playbook: str) -> bool:
        """Whether preparation is over (waited for, for the plays in ``wait_for``), or the options were
        taken already (the masters may still be opening)."""
        if self._preparing is None or (self._preparing.ident is not None and not self._preparing.is_alive()):
            return True
        if playbook in self.wait_for:
            self._start_deferred()
            self._preparing.join()
            return True
        return self._accepted

    def _stop(self, host: str) -> None:
        proc = self._masters.pop(host, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        """Stop every master connection (the held ones by their PID, the ControlPersist ones by ``ssh -O
        exit``) and remove the sockets' directory."""
        if self._preparing is not None and self._preparing.ident is not None:
            self._preparing.join()
        with self._lock:
            for host in list(self._masters):
                self._stop(host)
            with self._persisted_lock:
                persisted = [self.ready[h] for h in self._persisted if h in self.ready]
                self._persisted.clear()
            if persisted:
                with ThreadPoolExecutor(max_workers=min(32, len(persisted))) as pool:
                    list(pool.map(lambda w: subprocess.run(self._ssh(w, "-O", "exit", w.address),
                                                           stdin=subprocess.DEVNULL, capture_output=True,
                                                           timeout=OPEN_TIMEOUT, check=False), persisted))
        self._spawner.shutdown(wait=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _sharing(self, host: str) -> list[str]:
        """How one call connects: through the held master, or (a host not held) opening a master the
        next call of this run shares (ControlPersist, closed by ``close``)."""
        if host in self.held:
            return ["-o", "ControlMaster=no"]
        with self._persisted_lock:
            self._persisted.add(host)
        return ["-o", "ControlMaster=auto", "-o", "ControlPersist=30"]

    def __enter__(self) -> WarmPath:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the runner --------------------------------------------------------------------------------------

    def _stage_vars(self, playbook: str | Path, extravars: dict[str, Any] | None, plain: bool) -> StageVars | None:
        """The stage's typed vars when it can go warm, else None."""
        if not plain or Path(playbook).stem not in self.playbooks:
            return None
        try:
            sv = StageVars.model_validate(extravars or {})
        except ValidationError:
            return None
        targets = [t for t in sv.irm_targets.split(",") if t]
        if (sv.irm_media_targets_linux or sv.irm_media_targets_windows or not targets
                or sv.irm_targets_windows not in ("", "all:!all")
                or any(t not in self.ready or t not in sv.irm_policies for t in targets)):
            return None
        return sv

    def __call__(self, playbook: str | Path, inventory: str | Path, *, extravars: dict[str, Any] | None = None,
                 check: bool = False, diff: bool = False, limit: str | None = None, tags: list[str] | None = None,
                 forks: int | None = None, events: EventStream | None = None,
                 node: runner.ExecutionNode | None = None) -> runner.RunResult:
        plain = not (check or diff or limit or tags or node) and str(inventory) == self.inventory
        sv = self._stage_vars(playbook, extravars, plain and self._prepared(Path(playbook).stem))
        if sv is None:
            try:
                return self.fallback(playbook, inventory, extravars=extravars, check=check, diff=diff, limit=limit,
                                     tags=tags, forks=forks, events=events, node=node)
            finally:
                self._start_deferred()
        try:
            return self._run(str(Path(playbook).stem), sv, events)
        finally:
            self._start_deferred()

    def _run(self, name: str, sv: StageVars, events: EventStream | None) -> runner.RunResult:
        media = self.media.get(name)
        targets = [t for t in sv.irm_targets.split(",") if t]
        # every host's remote process started in one loop, before any is waited for: once their work keeps
        # the machine busy, a thread starting the next ones would wait its turn on the CPU with them
        begun: dict[str, tuple[dict[str, Any], Session | None]] = {}
        try:
            for h in targets:
                begun[h] = self._begin(h, sv, media)
        except BaseException:  # none left running unawaited (an apply nobody confirms reverts by its timer)
            for _, session in begun.values():
                if session is not None:
                    session.close()
            raise
        result = runner.per_host(name, PLAY, TASK, targets, lambda h: self._host(h, sv, begun[h])[1:],
                                 self.inventory, events, "warm")
        self.used += 1
        return result

    def read(self, hosts: list[str]) -> dict[str, dict[str, Any]]:
        """Each prepared host's irm table as nftables lists it now (the host code's ``state: read``), every
        host at once over the run's connections (a first call opens the one later calls share): host ->
        the host code's result."""
        def one(host: str) -> dict[str, Any]:
            warm = self.ready[host]
            session = Session(self._ssh(warm, *self._sharing(host), warm.address,
                                        self._seq.session_command(warm.python)),
                              self._seq, self._source, warm.python, host, wait=0)
            try:
                return session({"state": "read", "state_dir": warm.state_dir, "table": warm.table,
                                "nft_path": warm.nft_path})
            finally:
                session.close()
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            return dict(zip(hosts, pool.map(one, hosts), strict=True))

    def _begin(self, host: str, sv: StageVars, media: str | None) -> tuple[dict[str, Any], Session | None]:
        """One host's apply rendered (``media``: removable storage's state, changed in the same call) and its
        session started: (the apply's arguments, its session), or (the failure, None)."""
        warm = self.ready[host]
        policy = sv.irm_policies[host]
        args: dict[str, Any] = {
            "policy": policy, "fingerprint": sv.irm_fingerprints.get(host, ""), "token": sv.irm_token,
            "takeover_tokens": sv.irm_takeover_tokens, "expect": sv.irm_expect.get(host, []),
            "state_dir": warm.state_dir, "table": warm.table, "confirm_timeout": sv.firewall_policy_confirm_timeout,
            "deadman": warm.deadman, "absent": bool(self._render.is_empty(policy)), "boot_unit": warm.boot_unit,
            "nft_path": warm.nft_path}
        if media:
            args["media"] = {"state": media, "dir": warm.media_dir, "unload": warm.media_unload}
        args = self._seq.with_ruleset(host, args, self._host_code, self._render.render, self._render.PolicyError)
        if args.get("failed"):
            return args, None
        remote = self._seq.session_command(warm.python)
        if warm.become:
            remote = f"sudo -n -H -- {remote}"
        # one remote process per host and stage: the apply, then (the management path proven) the confirm
        # on its stdin; it waits for the confirm as long as the dead-man timer would
        session = Session(self._ssh(warm, *self._sharing(host), warm.address, remote), self._seq, self._source,
                          warm.python, host, wait=float(sv.firewall_policy_confirm_timeout) + 5)
        with contextlib.suppress(OSError):  # not started: the first call says why
            session.begin(args)
        return args, session

    def _host(self, host: str, sv: StageVars, begun: tuple[dict[str, Any], Session | None]
              ) -> tuple[str, str, dict[str, Any]]:
        """One host's change through the collection's sequence, its session begun (``_begin``): (host, runner
        event kind, its result)."""
        args, session = begun
        if session is None:
            return host, "runner_on_failed", args
        try:
            res = self._seq.apply_confirmed(args, sv.irm_reach.get(host, []), REACH_TIMEOUT, session, self.unanswered)
        finally:
            session.close()
        if session.lost and res.get("failed"):
            return host, "runner_on_unreachable", {**res, "msg": f"{host} not reached over SSH: {session.lost}"}
        return host, "runner_on_failed" if res.get("failed") else "runner_on_ok", res


class Session:
    """One host's session over SSH: a single remote process runs the host code's first call
    (``irm_nft_sequence.session_payload``) and then each later request sent on its stdin, one JSON line
    each way (``irm_nft_host.stdin_session``). Called as the sequence's ``call``: the first call starts it,
    the next ones ride it. Closing its stdin ends it; a process that ends or falls silent fails the call,
    naming what the host or ssh said."""

    def __init__(self, command: list[str], seq: Any, source: str, python: str, host: str, wait: float) -> None:
        self.command, self.seq, self.source, self.python, self.host, self.wait = (
            command, seq, source, python, host, wait)
        self.proc: subprocess.Popen[bytes] | None = None
        self.lost = ""  # ssh's own failure (exit 255): the host was not reached
        self._out = b""
        self._err: Any = None
        self._timed_out = False
        self._first: tuple[dict[str, Any], bytes] | None = None  # the first call's params, its bytes not yet written

    def begin(self, params: dict[str, Any]) -> None:
        """Start the remote process with its first call, without waiting for it: the caller starts every
        host's session in one loop, before the machine is busy with their work. Raises OSError when the
        ssh client cannot be started."""
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (read and closed in _ended)
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err)
        self._first = (params, self.seq.session_payload(self.source, params, self.wait))
        assert self.proc.stdin is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        with contextlib.suppress(BlockingIOError, BrokenPipeError):  # what the pipe takes now; the rest in _exchange
            self._first = (params, self._first[1][os.write(self.proc.stdin.fileno(), self._first[1]):])

    def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.proc is None:
            try:
                self.begin(params)
            except OSError as exc:
                return {"failed": True, "msg": f"the ssh client could not be started for {self.host}: {exc}"}
        if self._first is not None and self._first[0] is params:  # the call ``begin`` started
            data = self._first[1]
        elif self.proc is None or self.proc.poll() is not None:
            return self._ended()
        else:
            data = self.seq.session_request(params)
        self._first = None
        line = self._exchange(data, time.monotonic() + CALL_TIMEOUT)
        if line is None:
            return self._ended()
        return dict(self.seq.host_result(0, line.decode("utf-8", "replace"), "", self.python))

    def _exchange(self, data: bytes, deadline: float) -> bytes | None:
        """Write ``data`` and read one line back: None when the process closed its output first; a
        process silent until ``deadline`` is killed."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        stdin, stdout = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(stdin, False)
        with selectors.DefaultSelector() as sel:
            sel.register(stdout, selectors.EVENT_READ)
            if data:
                sel.register(stdin, selectors.EVENT_WRITE)
            while b"\n" not in self._out:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._kill()
                    self._timed_out = True
                    return None
                for key, _ in sel.select(left):
                    if key.fd == stdin:
                        try:
                            data = data[os.write(stdin, data):]
                        except BrokenPipeError:
                            data = b""
                        if not data:
                            sel.unregister(stdin)
                    else:
                        chunk = os.read(stdout, 65536)
                        if not chunk:
                            return None
                        self._out += chunk
        line, self._out = self._out.split(b"\n", 1)
        return line

    def _ended(self) -> dict[str, Any]:
        """The result of a session whose process ended (or was killed) before answering."""
        assert self.proc is not None
        if self._timed_out:
            return {"failed": True, "msg": f"no answer from {self.host} within {CALL_TIMEOUT:.0f}s"}
        try:
            rc = self.proc.wait(timeout=OPEN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
            rc = self.proc.returncode
        self._err.seek(0)
        err = self._err.read().decode("utf-8", "replace")
        if rc == 255:
            self.lost = err.strip().splitlines()[-1] if err.strip() else "ssh failed"
        return dict(self.seq.host_result(rc, self._out.decode("utf-8", "replace"), err, self.python))

    def _kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """End the session: its stdin closed (the host code returns), its process waited for."""
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=OPEN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
        for pipe in (self.proc.stdout, self._err):
            if pipe is not None:
                pipe.close()
