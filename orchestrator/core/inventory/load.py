"""Load an inventory through ansible-core's own inventory machinery (plugins, group_vars/host_vars,
templating), reduce it to plain data and hand it to ``inventory.build_inventory`` for validation.

This is the only module besides the runner adapter that imports ansible: irm sees exactly the groups,
hosts and variables that ansible-playbook will see.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InventoryError
from orchestrator.core.inventory.model import GROUP_KEYS, Inventory
from orchestrator.core.inventory.validate import RawGroup, RawHost, RawInventory, build_inventory

# Host variables irm reads; only these are templated (others may hold vault values or templates that
# only make sense at task time).
_HOST_KEYS_PREFIX = "irm_"
_HOST_KEYS_EXTRA = ("ansible_host", "ansible_connection", "ansible_network_os", "ansible_port", "ansible_user",
                    "ansible_ssh_private_key_file", "ansible_ssh_common_args")
def plain(value: Any) -> Any:
    """Strip ansible's tagged types down to builtins so pydantic and json see ordinary data."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def load_raw(source: str | Path) -> RawInventory:
    """Every problem Ansible has with the files (YAML, encoding, permissions) becomes one line naming the
    file and, where the parser knows it, the line."""
    from ansible.errors import AnsibleError

    try:
        return _load_raw(source)
    except AnsibleError as exc:
        raise InventoryError(f"inventory '{source}': {_where(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"inventory '{source}': {getattr(exc, 'filename', None) or source}: cannot be read "
                             f"({getattr(exc, 'strerror', None) or exc})") from None


def _where(exc: BaseException) -> str:
    """The file and line an Ansible error points at (its origin tag, through the exception's causes), then
    the first line of its message."""
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:  # another ansible-core: the message alone
        return _first(exc)
    seen: BaseException | None = exc
    while seen is not None:
        obj = getattr(seen, "obj", None)
        origin = obj if isinstance(obj, Origin) else Origin.get_tag(obj)
        if origin is not None and origin.path:
            line = f":{origin.line_num}" if origin.line_num else ""
            message = _first(seen).removeprefix("YAML parsing failed: ")
            return f"{origin.path}{line}: not valid YAML: {message}" if "YAML" in _first(seen) \
                else f"{origin.path}{line}: {message}"
        seen = seen.__cause__ or seen.__context__
    return _first(exc)


def _load_raw(source: str | Path) -> RawInventory:
    path = Path(source)
    if not path.exists():
        raise InventoryError(f"inventory '{source}' does not exist: pass -i PATH or set IRM_INVENTORY")
    os.environ.setdefault("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "True")
    # a key given twice in one mapping (a second irm_gateway, a second vars: block) is refused, naming the
    # file and line, never settled silently by "the last one wins"
    os.environ["ANSIBLE_DUPLICATE_YAML_DICT_KEY"] = "error"
    from ansible import constants as C
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager
    from ansible.vars.plugins import get_vars_from_inventory_sources

    C.INVENTORY_ANY_UNPARSED_IS_FAILED = True
    loader = DataLoader()
    vault_secrets(loader)
    chatter = io.StringIO()  # ansible warns once per inventory plugin tried; irm reports one line
    try:
        with contextlib.redirect_stderr(chatter):
            inv = InventoryManager(loader=loader, sources=[str(path)])
            vm = VariableManager(loader=loader, inventory=inv)
    except AnsibleError as exc:
        why = _parse_failure(chatter.getvalue(), exc)
        raise InventoryError(f"inventory '{source}' cannot be parsed: {why}") from None

    sources = [str(path)]

    def group_vars(group: Any) -> dict[str, Any]:
        data = dict(group.get_vars())
        data.update(get_vars_from_inventory_sources(loader, sources, [group], "task"))
        return data

    all_vars = group_vars(inv.groups["all"])
    groups: dict[str, RawGroup] = {}
    problems: list[str] = []
    for name, group in inv.groups.items():
        gv = group_vars(group)
        templar = Templar(loader, variables={**all_vars, **gv})
        values: dict[str, Any] = {}
        for key, val in gv.items():
            if key not in GROUP_KEYS:
                values[key] = None  # known to exist; value not needed at group level
                continue
            try:
                values[key] = plain(templar.template(val))
            except AnsibleError as exc:
                problems.append(f"{source}: group '{name}', key '{key}': cannot be templated: {_first(exc)}")
        groups[name] = RawGroup(
            name=name, vars=values,
            parents=[p.name for p in group.parent_groups],
            hosts=[h.name for h in group.hosts],
        )

    hosts: dict[str, RawHost] = {}
    for host in inv.get_hosts():
        hv = vm.get_vars(host=host, include_hostvars=False)
        own = set(host.vars) | set(get_vars_from_inventory_sources(loader, sources, [host], "task"))
        templar = Templar(loader, variables=hv)
        values = {}
        errors: dict[str, str] = {}
        for key, val in hv.items():
            if not (key.startswith(_HOST_KEYS_PREFIX) or key in _HOST_KEYS_EXTRA):
                continue
            try:
                values[key] = plain(templar.template(val))
            except AnsibleError as exc:
                errors[key] = f"cannot be templated: {_first(exc)}"
        hosts[host.name] = RawHost(
            name=host.name, vars=values, own_keys=own,
            groups=[g.name for g in host.get_groups()], var_errors=errors,
        )
    if problems:
        raise InventoryError(*problems)
    return RawInventory(source=str(source), groups=groups, hosts=hosts)


def vault_secrets(loader: Any) -> None:
    """The vault password files Ansible is configured with (ANSIBLE_VAULT_PASSWORD_FILE, vault ids,
    ansible.cfg), loaded as ansible-playbook loads them, so vault-encrypted irm_* values decrypt here
    exactly as they do in the plays. Never prompts."""
    from ansible import constants as C
    from ansible.cli import CLI
    from ansible.parsing.vault import VaultSecretsContext

    files = [C.DEFAULT_VAULT_PASSWORD_FILE] if C.DEFAULT_VAULT_PASSWORD_FILE else []
    if not files and not C.DEFAULT_VAULT_IDENTITY_LIST:
        return
    active = VaultSecretsContext.current(optional=True)
    with contextlib.redirect_stderr(io.StringIO()):
        secrets = CLI.setup_vault_secrets(loader, vault_ids=list(C.DEFAULT_VAULT_IDENTITY_LIST),
                                          vault_password_files=files, auto_prompt=False,
                                          initialize_context=active is None)
    if active is not None:
        active.secrets = secrets


def _parse_failure(chatter: str, exc: Exception) -> str:
    """The most useful line of ansible's parse warnings: the YAML error and where it is."""
    cause = next((ln.strip() for ln in chatter.splitlines() if ln.strip().startswith("YAML parsing failed")), None)
    origin = next((ln.strip()[len("Origin: "):] for ln in chatter.splitlines()
                   if ln.strip().startswith("Origin: /")), None)
    if cause:
        return f"{origin}: {cause}" if origin else cause
    return _first(exc)


def _first(exc: BaseException) -> str:
    text = str(getattr(exc, "message", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_inventory(source: str | Path, snapshot: bool = False) -> Inventory:
    """Load and validate; raises ``InventoryError`` with one line per problem. With ``snapshot``, a
    static inventory unchanged since its last load is read from its snapshot (``inventory.snapshot``)
    instead of through Ansible; the result is validated the same way. IRM_INVENTORY_SNAPSHOT=0 turns
    snapshots off."""
    if not snapshot or os.environ.get("IRM_INVENTORY_SNAPSHOT") == "0":
        return build_inventory(load_raw(source))
    from orchestrator.core.inventory import snapshot as snap

    key = snap.key(Path(source))
    raw = snap.read(Path(source), key)
    if raw is None:
        raw = load_raw(source)
        snap.write(Path(source), key, raw)
    return build_inventory(raw)


def vault_values(source: str | Path) -> list[str]:
    """Every vault-encrypted value of the inventory, decrypted with the vault password file Ansible is
    given (ANSIBLE_VAULT_PASSWORD_FILE), so irm can keep them out of what it writes. Without a password
    file, nothing can be decrypted: not by Ansible either."""
    pwfile = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    root = Path(source)
    if not pwfile or not Path(pwfile).is_file():
        return []
    import re

    import yaml
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(Path(pwfile).read_bytes().strip()))])
    block = re.compile(r"!vault\s*\|[-+]?\s*\n((?:[ \t]+\S.*(?:\n|$))+)")
    found: list[str] = []

    def leaves(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in leaves(v)]
        if isinstance(value, list):
            return [s for v in value for s in leaves(v)]
        return [str(value)] if value is not None else []

    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        try:
            if text.startswith("$ANSIBLE_VAULT"):
                found += leaves(yaml.safe_load(vault.decrypt(text.encode()).decode()))
            for match in block.finditer(text):
                lines = [line.strip() for line in match.group(1).splitlines() if line.strip()]
                found.append(vault.decrypt("\n".join(lines).encode()).decode())
        except Exception as exc:  # any vault or YAML failure: say which file, in one line
            raise InventoryError(f"{path}: a vault value cannot be decrypted with {pwfile} ({exc})") from None
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)
