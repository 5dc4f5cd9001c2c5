"""Signed approvals: real ssh-keygen signatures, verified against the inventory's keys (no lab)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.core.errors import UserError
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Approver, Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.recovery import approval
from tests.conftest import LAB_INVENTORY
from tests.fakes.runner import without_channels

AREA = "subsidiary-x"
Setup = tuple[Inventory, Journal, Path, Path]


def keypair(tmp: Path, name: str) -> Path:
    key = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Inventory, Journal, Path, Path]:
    ciso, cio = keypair(tmp_path, "ciso"), keypair(tmp_path, "cio")
    inv = without_channels(load_inventory(LAB_INVENTORY)).model_copy(update={"approvers": (
        Approver(name="ciso", role="CISO", key=(tmp_path / "ciso.pub").read_text().strip()),
        Approver(name="cio", role="CIO", key_file=str(tmp_path / "cio.pub")))})
    j = Journal(tmp_path / "j.db")
    inc = j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/445"]), "op")
    for host in ("x-ws11", "x-ws12"):
        j.remediation.set(inc.id, AREA, host, "verified", "op", method="package")
    return inv, j, ciso, cio


def problems(inv: Inventory, j: Journal, operator: str = "op") -> list[str]:
    return approval.approval_problems(inv, j, j.incidents.all()[0], AREA, operator)


def test_a_signed_approval_verifies_and_names_its_key(setup: Setup) -> None:
    inv, j, ciso, _ = setup
    assert "no management approval" in problems(inv, j)[0]
    signed = approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "verified", "op")
    assert signed["approver"] == "ciso" and signed["fingerprint"].startswith("SHA256:")
    assert problems(inv, j) == []
    (row,) = j.decisions.approvals(1)
    assert "BEGIN SSH SIGNATURE" in str(row["signature"]) and f"area: {AREA}" in str(row["statement"])


def test_the_approver_cannot_run_the_recovery(setup: Setup) -> None:
    inv, j, ciso, cio = setup
    approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "verified", "op")
    assert "ciso runs this recovery" in problems(inv, j, operator="ciso")[0]
    approval.approve(inv, j, j.incidents.all()[0], AREA, cio, "verified", "op")
    assert problems(inv, j, operator="ciso") == []  # the CIO's approval counts for the CISO


def test_a_remediation_after_the_approval_voids_it(setup: Setup) -> None:
    inv, j, ciso, _ = setup
    approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "verified", "op")
    j.remediation.set(1, AREA, "x-ws12", "verified", "op", method="manual")
    assert "must postdate the last remediation" in problems(inv, j)[0]


def test_a_tampered_statement_or_a_removed_approver_does_not_verify(setup: Setup) -> None:
    inv, j, ciso, _ = setup
    approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "verified", "op")
    db = sqlite3.connect(j.path)
    db.execute("UPDATE approvals SET statement=replace(statement, 'reason: verified', 'reason: forged')")
    db.commit()
    db.close()
    assert "the signature does not verify" in problems(inv, j)[0]
    gone = inv.model_copy(update={"approvers": inv.approvers[1:]})
    assert "is no longer a listed approver" in problems(gone, j)[0]


def test_a_key_that_is_not_listed_or_not_private_is_refused(setup: Setup, tmp_path: Path) -> None:
    inv, j, _, _ = setup
    stranger = keypair(tmp_path, "stranger")
    with pytest.raises(UserError, match="is not the key of an approver listed"):
        approval.approve(inv, j, j.incidents.all()[0], AREA, stranger, "trust me", "op")
    with pytest.raises(UserError, match="a public key whose private key is not in this SSH agent"):
        approval.approve(inv, j, j.incidents.all()[0], AREA, tmp_path / "ciso.pub", "x", "op")
    assert j.decisions.approvals(1) == []


def test_an_unsigned_legacy_approval_does_not_count(setup: Setup) -> None:
    inv, j, _, _ = setup
    j.db.execute("INSERT INTO approvals(incident_id, area, approved_by, role, reason, approved_at, recorded_by) "
                 "VALUES (1, ?, 'ciso', 'CISO', 'typed', '2030-01-01T00:00:00+00:00', 'op')", (AREA,))
    assert "it is not signed" in problems(inv, j)[0]


@pytest.fixture()
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An ssh-agent of this test's own (its socket in tmp_path), stopped by its PID afterwards."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)


def test_four_eyes_compares_identity_not_a_declared_name(setup: Setup, agent: Path, tmp_path: Path) -> None:
    inv, j, ciso, _ = setup
    approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "verified", "op")
    # the same person whatever the case of the name typed
    assert "ciso runs this recovery" in problems(inv, j, operator="CISO ")[0]
    # another listed name with the same key is the same person
    alias = inv.model_copy(update={"approvers": (*inv.approvers, Approver(
        name="j.doe", role="deputy", key=(tmp_path / "ciso.pub").read_text().strip()))})
    assert "J.Doe runs this recovery and is listed with the key that signed it" in problems(alias, j, "J.Doe")[0]
    # the approver, declaring another operator name, still holds the signing key in their own agent
    assert problems(inv, j, operator="bob") == []
    subprocess.run(["ssh-add", "-q", str(ciso)], check=True, capture_output=True)
    assert "is loaded in this operator's SSH agent" in problems(inv, j, operator="bob")[0]


def test_an_exclusion_after_the_signature_voids_it(setup: Setup) -> None:
    inv, j, ciso, _ = setup
    j.hosts.exclude(1, AREA, "x-ws13", "dead disk, replaced", "op")
    approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "verified", "op")
    assert problems(inv, j) == []  # an exclusion before the signature is covered by it
    assert "exclusions: sha256:" in str(j.decisions.approvals(1)[0]["statement"])
    j.hosts.exclude(1, AREA, "x-ws12", "left out", "op")
    assert "a host was excluded after it was signed" in problems(inv, j)[0]


def test_keys_in_an_agent_or_behind_a_passphrase_sign_and_a_key_readable_by_others_is_refused(
        setup: Setup, agent: Path, tmp_path: Path) -> None:
    inv, j, ciso, cio = setup
    # in the agent: the approver gives the public key, the agent signs
    subprocess.run(["ssh-add", "-q", str(cio)], check=True, capture_output=True)
    signed = approval.approve(inv, j, j.incidents.all()[0], AREA, tmp_path / "cio.pub", "verified", "op")
    assert signed["approver"] == "cio"
    subprocess.run(["ssh-add", "-D"], check=True, capture_output=True)
    # behind a passphrase: ssh-keygen asks for it (here through SSH_ASKPASS, as a desktop would)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "s3cret phrase", "-f", str(ciso)], check=True)
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho 's3cret phrase'\n")
    askpass.chmod(0o700)
    env = {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "verified", "op")["approver"] == "ciso"
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert problems(inv, j) == []
    # readable by others: refused before anything is signed
    ciso.chmod(0o644)
    with pytest.raises(UserError, match=r"readable by others \(mode 0644\).*chmod 600"):
        approval.approve(inv, j, j.incidents.all()[0], AREA, ciso, "again", "op")
    assert len(j.decisions.approvals(1)) == 2
