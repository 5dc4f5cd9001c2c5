"""irm serve: the crisis cell's live board in a browser (read-only)."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.app import app, console
from orchestrator.cli.options import DEFAULT_INVENTORY, IncidentOpt, InventoryOpt, JournalOpt, load
from orchestrator.core.errors import UserError
from orchestrator.core.journal import DEFAULT_PATH

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]


def _token(path: Path) -> str:
    """The board's token from a file only its owner can read (a token on the command line would show in ps)."""
    from orchestrator.core.safefile import read_text_bounded

    try:
        st = os.stat(path)
    except OSError as exc:
        raise UserError(f"serve: --token-file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"serve: --token-file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise UserError(f"serve: --token-file {path} is readable by others (mode {st.st_mode & 0o777:o}); "
                        f"chmod 600 it")
    token = read_text_bounded(path, "serve: --token-file", 4096).strip()
    if len(token) < 16 or any(c.isspace() or not c.isprintable() for c in token):
        raise UserError(f"serve: --token-file {path} must hold one token of 16 printable characters or more, "
                        "without blanks")
    return token


def _readable(path: Path | None, what: str) -> None:
    if path is not None and not path.is_file():
        raise UserError(f"serve: {what} {path} is not a readable file")


@app.command("serve")
def serve(
    listen: Annotated[str, typer.Option("--listen", help="The address to listen on; any but loopback needs TLS "
                                        "and a token or client certificates.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The TCP port.")] = 8765,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="The server's certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Its private key (PEM).")] = None,
    client_ca: Annotated[Path | None, typer.Option(
        "--client-ca", help="Require client certificates signed by this CA (PEM).")] = None,
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", help="Require this token (a file of mode 600): open /?token=... once, or send it as a "
        "bearer token.")] = None,
    server_name: Annotated[list[str] | None, typer.Option(
        "--server-name", help="A host name browsers use to reach the board (checked in every request's Host "
        "header); repeat for several.")] = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
) -> None:
    """Serve the crisis cell's live board: the map coloured by each area's posture, the running stage host by
    host, the decisions waiting, detections per sub-area over time, notifications, the timeline and the
    report. Read-only: it reads the journal and the running commands' live feeds; no page writes anything.

    Example: irm serve --port 8765   (then open http://127.0.0.1:8765/)
    """
    try:
        address = ipaddress.ip_address(listen)
    except ValueError:
        raise UserError(f"serve: --listen {listen!r} is not an IP address") from None
    loopback = address.is_loopback
    if (tls_cert is None) != (tls_key is None):
        raise UserError("serve: --tls-cert and --tls-key go together")
    if client_ca is not None and tls_cert is None:
        raise UserError("serve: --client-ca needs --tls-cert and --tls-key")
    if not loopback and (tls_cert is None or (token_file is None and client_ca is None)):
        raise UserError(f"serve: listening on {listen} (not loopback) needs TLS (--tls-cert, --tls-key) and a "
                        "token (--token-file) or client certificates (--client-ca)")
    if address.is_unspecified and not server_name:
        raise UserError(f"serve: listening on {listen} needs --server-name (the names browsers use), so that "
                        "requests naming another host are refused")
    for path, what in ((tls_cert, "--tls-cert"), (tls_key, "--tls-key"), (client_ca, "--client-ca")):
        _readable(path, what)
    token = _token(token_file) if token_file is not None else None
    hosts = [*server_name] if server_name else []
    if not address.is_unspecified:
        hosts.append(str(address))
    if loopback:
        hosts += LOOPBACK_NAMES
    inv = load(inventory)
    from orchestrator.core.inventory.load import vault_values

    try:
        import uvicorn

        from orchestrator.board.web import create_app
    except ImportError as exc:
        raise UserError(f"serve: the board needs {exc.name} (pip install irm-orchestrator installs it)") from None
    board = create_app(inv, journal, incident_id, token=token, secure=tls_cert is not None, hosts=hosts,
                       secrets=vault_values(inventory))
    scheme = "https" if tls_cert else "http"
    shown = f"[{listen}]" if address.version == 6 else listen
    console.print(f"irm board at {scheme}://{shown}:{port}/ (journal {journal}; read-only"
                  f"{'; token required' if token else ''}{'; client certificates required' if client_ca else ''}); "
                  "Ctrl-C stops it", soft_wrap=True)
    import ssl

    config = uvicorn.Config(board, host=listen, port=port, log_level="warning", access_log=False,
                            ssl_certfile=str(tls_cert) if tls_cert else None,
                            ssl_keyfile=str(tls_key) if tls_key else None,
                            ssl_ca_certs=str(client_ca) if client_ca else None,
                            ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as exc:
        raise UserError(f"serve: cannot listen on {listen}:{port} ({exc.strerror or exc})") from None
    if not server.started:
        raise UserError(f"serve: the board did not start on {listen}:{port} (is the port in use?)")
