"""Signatures by identity: the approvers listed in the inventory (``irm_approvers``) sign with their SSH
keys (``ssh-keygen -Y``), each kind of signed thing in its own namespace (recovery approvals, the
containment policy), so a signature made for one never verifies as another."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import tempfile
from pathlib import Path

from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Approver, Inventory
from orchestrator.core.safefile import KEY_MAX, read_bounded, read_text_bounded


def _key_blob(pubkey: str) -> tuple[str, str]:
    parts = pubkey.split()
    if len(parts) < 2:
        raise UserError(f"'{pubkey[:40]}' is not an SSH public key")
    return parts[0], parts[1]


def fingerprint(pubkey: str) -> str:
    """The key's SHA256 fingerprint, as ``ssh-keygen -l`` prints it."""
    _, blob = _key_blob(pubkey)
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def approver_key(inv: Inventory, approver: Approver) -> str:
    if approver.key:
        return approver.key
    assert approver.key_file
    base = Path(inv.source) if Path(inv.source).is_dir() else Path(inv.source).parent
    path = Path(approver.key_file) if Path(approver.key_file).is_absolute() else base / approver.key_file
    return read_text_bounded(path, f"approver '{approver.name}': key_file", KEY_MAX, "an SSH public key").strip()


def _ssh_keygen(args: list[str], data: str, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["ssh-keygen", *args], input=data, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise UserError(f"{what}: ssh-keygen is not installed (apt install openssh-client)") from None




def agent_keys() -> dict[str, str]:
    """The keys held by this process's SSH agent (``SSH_AUTH_SOCK``): fingerprint -> public key."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        return {}
    try:
        proc = subprocess.run(["ssh-add", "-L"], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {}
    keys = [ln.strip() for ln in proc.stdout.splitlines() if ln.startswith(("ssh-", "ecdsa-", "sk-"))]
    return {fingerprint(k): k for k in keys} if proc.returncode == 0 else {}


def _openssh_public(text: str) -> str | None:
    """The public key stored in the clear inside an OpenSSH private key file (encrypted or not)."""
    body = "".join(ln for ln in text.splitlines() if ln and not ln.startswith("-----"))
    try:
        raw = base64.b64decode(body, validate=False)
    except ValueError:
        return None
    magic = b"openssh-key-v1\0"
    if not raw.startswith(magic):
        return None
    pos = len(magic)

    def field() -> bytes:
        nonlocal pos
        size = int.from_bytes(raw[pos:pos + 4], "big")
        pos += 4
        value = raw[pos:pos + size]
        pos += size
        return value

    for _ in range(3):  # cipher, kdf, kdf options
        field()
    pos += 4  # number of keys
    blob = field()
    kind = blob[4:4 + int.from_bytes(blob[:4], "big")].decode("ascii", "replace")
    return f"{kind} {base64.b64encode(blob).decode()}" if blob else None


def public_key_of(keyfile: Path) -> str:
    """The public key an approval will be signed with: a private key file that only its owner can read
    (passphrase-protected or not), or a public key whose private key this process's SSH agent holds."""
    text = read_bounded(keyfile, "--key", KEY_MAX).decode("utf-8", errors="replace")
    if text.startswith(("ssh-", "ecdsa-", "sk-")):
        key = " ".join(text.split()[:2])
        if fingerprint(key) not in agent_keys():
            raise UserError(f"--key {keyfile}: a public key whose private key is not in this SSH agent; give the "
                            "approver's private key, or load it with ssh-add")
        return key
    mode = keyfile.stat().st_mode
    if mode & 0o077:
        raise UserError(f"--key {keyfile}: readable by others (mode {stat.S_IMODE(mode):04o}); an approver's "
                        f"private key must be theirs alone: chmod 600 {keyfile}")
    found = _openssh_public(text)
    if found is not None:
        return found
    proc = _ssh_keygen(["-y", "-P", "", "-f", str(keyfile)], "", f"--key {keyfile}")
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["not an SSH private key"])[-1]
        raise UserError(f"--key {keyfile}: cannot be used ({why})")
    return proc.stdout.strip()


def approver_for_key(inv: Inventory, pubkey: str) -> Approver:
    blob = _key_blob(pubkey)
    for approver in inv.approvers:
        if _key_blob(approver_key(inv, approver)) == blob:
            return approver
    listed = ", ".join(a.name for a in inv.approvers) or "none"
    raise UserError(f"--key: the key {fingerprint(pubkey)} is not the key of an approver listed in {inv.source} "
                    f"(irm_approvers: {listed})")


def sign(text: str, keyfile: Path, namespace: str) -> str:
    """``text`` signed with ``keyfile`` for ``namespace`` (``ssh-keygen -Y sign``)."""
    proc = _ssh_keygen(["-Y", "sign", "-q", "-f", str(keyfile), "-n", namespace], text, f"--key {keyfile}")
    if proc.returncode != 0 or "BEGIN SSH SIGNATURE" not in proc.stdout:
        why = (proc.stderr.strip().splitlines() or ["no signature"])[-1]
        raise UserError(f"--key {keyfile}: signing failed ({why})")
    return proc.stdout


def verify(text: str, signature: str, principal: str, pubkey: str, namespace: str) -> bool:
    """``ssh-keygen -Y verify`` of ``text`` against one allowed signer (``principal`` with ``pubkey``),
    for ``namespace`` only: a signature made for anything else never verifies."""
    with tempfile.TemporaryDirectory(prefix="irm-sig-") as tmp:
        allowed, sig = Path(tmp) / "allowed_signers", Path(tmp) / "statement.sig"
        kind, blob = _key_blob(pubkey)
        allowed.write_text(f'{principal} namespaces="{namespace}" {kind} {blob}\n', encoding="utf-8")
        sig.write_text(signature, encoding="utf-8")
        proc = _ssh_keygen(["-Y", "verify", "-f", str(allowed), "-I", principal, "-n", namespace, "-s", str(sig)],
                           text, "signature")
    return proc.returncode == 0
