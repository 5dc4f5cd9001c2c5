"""Execution nodes: reaching them, checking they run exactly the controller's versions, installing irm's
runtime on them without Internet access.

A node runs an area's plays (``runner.ExecutionNode``); it must run what the controller runs: the same
ansible-core, the same ``ansible`` package (its collections), the same ansible-runner and the same files
of irm (its package, the ``irm.response`` collection, the playbooks, ``ansible.cfg``), at the same paths.
``install`` copies the controller's own virtualenv and irm's files there over SSH (a tar stream: no
package index, no Internet); ``check`` compares versions and file checksums.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from orchestrator.core import paths
from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Host
from orchestrator.core.runner import ExecutionNode

VENV = Path(sys.prefix)
_PROBE = ("import json, importlib.metadata as m\n"
          "print(json.dumps({p: m.version(p) for p in ('ansible-core', 'ansible', 'ansible-runner')}))\n")


def execution_node(host: Host) -> ExecutionNode:
    if not host.runs_jobs or host.login is None:
        raise UserError(f"'{host.name}' is not an execution node (group execution_nodes)")
    return ExecutionNode(name=host.name, address=str(host.address), user=host.login.user, port=host.login.port,
                         ssh_options=host.ssh_args, runner=host.node_runner or str(VENV / "bin" / "ansible-runner"))


def node_python(node: ExecutionNode) -> str:
    """The node's Python: the one beside its ansible-runner (irm's virtualenv there)."""
    return str(Path(node.runner).parent / "python")


def versions() -> dict[str, str]:
    return {p: metadata.version(p) for p in ("ansible-core", "ansible", "ansible-runner")}


def _ssh(node: ExecutionNode, command: str, data: bytes | None = None, timeout: float = 60) -> str:
    try:
        proc = subprocess.run(node.ssh_command(command), input=data, capture_output=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"{node.name}: no answer within {timeout:.0f}s over SSH") from None
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UserError(f"{node.name}: '{command.split()[0]}' failed over SSH ({proc.returncode}): "
                        f"{why[-1] if why else 'no message'}")
    return proc.stdout.decode(errors="replace")


def check(node: ExecutionNode) -> list[str]:
    """What differs between the node and the controller (empty: the node runs exactly what irm runs), or
    the one reason it cannot be checked (unreachable, no runtime)."""
    python = node_python(node)
    try:
        theirs = json.loads(_ssh(node, f"{python} -I -c {shlex.quote(_PROBE)}"))
    except UserError as exc:
        return [str(exc)]
    except ValueError:
        return [f"{node.name}: its Python at {python} did not report versions"]
    problems = [f"{node.name}: {p} {theirs.get(p, 'missing')}, the controller runs {v}"
                for p, v in versions().items() if theirs.get(p) != v]
    files = paths.own_files()
    listing = "\n".join(str(f) for f in files).encode()
    try:
        out = _ssh(node, "xargs -d '\\n' sha256sum --", data=listing, timeout=120)
    except UserError as exc:
        return [*problems, f"{node.name}: irm's files cannot be read there ({exc})"]
    remote = {line[66:]: line[:64] for line in out.splitlines() if len(line) > 66}
    differ = [str(f) for f in files if remote.get(str(f)) != paths.sha256(f)]
    if differ:
        problems.append(f"{node.name}: {len(differ)} of irm's files differ or are missing "
                        f"({', '.join(differ[:3])}{' ...' if len(differ) > 3 else ''}): run 'irm node install'")
    left = leftover_jobs(node)
    if left:
        problems.append(f"{node.name}: {len(left)} job director{'y' if len(left) == 1 else 'ies'} left by runs "
                        f"that died there ({', '.join(left[:3])}): they hold a job's extra vars; "
                        "'irm node check --clean' removes them")
    return problems


def leftover_jobs(node: ExecutionNode) -> list[str]:
    """Job directories a worker could not remove (its run was killed): ``/tmp/irm-job-*`` on the node."""
    try:
        out = _ssh(node, "find /tmp -maxdepth 1 -name 'irm-job-*' -type d", timeout=30)
    except UserError:
        return []
    return sorted(line for line in out.splitlines() if line.startswith("/tmp/irm-job-"))


def clean_jobs(node: ExecutionNode) -> list[str]:
    """Remove the job directories runs left on the node; returns what was removed."""
    left = leftover_jobs(node)
    if left:
        _ssh(node, "rm -rf -- " + " ".join(shlex.quote(d) for d in left), timeout=60)
    return left


def shares_filesystem(node: ExecutionNode) -> bool:
    """True when the node sees this machine's files (the lab: namespaces share one filesystem), found by a
    marker file only this call creates."""
    with tempfile.NamedTemporaryFile(prefix=".irm-node-probe-", dir=paths.PROJECT_ROOT) as marker:
        try:
            _ssh(node, f"test -e {shlex.quote(marker.name)}", timeout=30)
        except UserError:
            return False
        return True


def install(node: ExecutionNode) -> str:
    """Copy the controller's virtualenv and irm's files to the node, at the same paths, over SSH (no
    package index, no Internet), then check. Refused on a node that shares this machine's filesystem
    (the files would be written over themselves)."""
    if shares_filesystem(node):
        return f"{node.name} shares this machine's filesystem: irm's runtime is already there, nothing copied"
    with tempfile.TemporaryFile() as stream:
        with tarfile.open(fileobj=stream, mode="w|gz") as tar:
            tar.add(str(VENV), arcname=str(VENV).lstrip("/"),
                    filter=lambda ti: None if "__pycache__" in ti.name else ti)
            for f in paths.own_files():
                tar.add(str(f), arcname=str(f).lstrip("/"))
        size = stream.tell()
        stream.seek(0)
        _ssh(node, "tar -xzf - -C /", data=stream.read(), timeout=900)
    problems = check(node)
    if problems:
        raise UserError(*problems)
    running = ", ".join(f"{k} {v}" for k, v in versions().items())
    return f"{node.name}: {size / 1e6:.0f} MB copied; it runs irm's versions ({running})"
