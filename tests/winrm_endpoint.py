"""A small WinRM (WS-Management over HTTP) test endpoint that records every command it receives.

It speaks the part of the protocol that pywinrm, and Ansible's winrm connection through it, use:
Create (a shell), Command, Send (stdin), Receive (output, exit code), Signal and Delete. It runs
nothing: every command gets a canned stdout (a JSON module result, so Ansible's modules return) and
exit code 0; ``--stdout-for MODULE=JSON`` gives the commands that run Ansible module MODULE their
own, and ``--stdout-file-when TEXT=FILE`` gives the commands whose stdin contains TEXT the content FILE
has when the command ends (a test writes there what the "host" holds, such as its firewall rules).
Each command, its arguments and its whole stdin are appended as one JSON line to the record file,
which is what the tests read: the PowerShell irm's Windows roles would run, byte for byte.

    python -m tests.winrm_endpoint --listen ADDRESS:PORT --record FILE [--stdout JSON]
                                   [--stdout-for MODULE=JSON ...] [--stdout-file-when TEXT=FILE ...]

Test-only: it accepts any credentials and is started by the tests inside a network namespace of their
own, on a lab address.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
DONE = f"{SHELL}/CommandState/Done"


def _envelope(action: str, relates_to: str, body: str, selector: str = "") -> bytes:
    header_selector = f"<w:SelectorSet><w:Selector Name=\"ShellId\">{selector}</w:Selector></w:SelectorSet>" \
        if selector else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo>{header_selector}</s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


class Recorder:
    def __init__(self, path: Path, stdout: str, stdout_for: dict[str, str],
                 stdout_file_when: dict[str, Path] | None = None) -> None:
        self.path = path
        self.stdout_file_when = stdout_file_when or {}
        self.stdout = stdout.encode()
        self.stdout_for = {f"plugins.modules.{m}.ps1": s.encode() for m, s in stdout_for.items()}
        self.commands: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def finish(self, command_id: str) -> bytes:
        """Record the command; return its canned stdout."""
        with self.lock:
            rec = self.commands.pop(command_id, None)
            if rec is None:
                return self.stdout
            rec["stdin"] = b"".join(rec["stdin"]).decode("utf-8", errors="replace")
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")
        played = next((f for text, f in self.stdout_file_when.items() if text in rec["stdin"]), None)
        if played is not None:
            return played.read_bytes()
        return next((out for marker, out in self.stdout_for.items() if marker in rec["stdin"]), self.stdout)


def handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class WsMan(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            if not self.headers.get("Authorization", "").startswith("Basic "):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="WSMAN"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            root = ET.fromstring(body)
            action = root.findtext("s:Header/a:Action", default="", namespaces=NS)
            message_id = root.findtext("s:Header/a:MessageID", default="", namespaces=NS)
            user = base64.b64decode(self.headers["Authorization"][6:]).decode(errors="replace").split(":")[0]
            reply = self._dispatch(root, action.rsplit("/", 1)[-1], message_id, user)
            self.send_response(200)
            self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def _dispatch(self, root: ET.Element, action: str, message_id: str, user: str) -> bytes:
            if action == "Create":
                shell_id = str(uuid.uuid4()).upper()
                body = (f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId></rsp:Shell>"
                        f'<w:ResourceCreated><a:ReferenceParameters><w:SelectorSet><w:Selector Name="ShellId">'
                        f"{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters></w:ResourceCreated>")
                return _envelope(f"{NS['w']}/CreateResponse", message_id, body, shell_id)
            if action == "Command":
                command_id = str(uuid.uuid4()).upper()
                line = root.find("s:Body/rsp:CommandLine", NS)
                command = line.findtext("rsp:Command", default="", namespaces=NS) if line is not None else ""
                arguments = [a.text or "" for a in line.findall("rsp:Arguments", NS)] if line is not None else []
                with recorder.lock:
                    recorder.commands[command_id] = {"user": user, "command": command, "arguments": arguments,
                                                     "stdin": []}
                return _envelope(f"{SHELL}/CommandResponse", message_id,
                                 f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
                                 "</rsp:CommandResponse>")
            if action == "Send":
                stream = root.find("s:Body/rsp:Send/rsp:Stream", NS)
                if stream is not None:
                    command_id = stream.get("CommandId", "")
                    with recorder.lock:
                        if command_id in recorder.commands and stream.text:
                            recorder.commands[command_id]["stdin"].append(base64.b64decode(stream.text))
                return _envelope(f"{SHELL}/SendResponse", message_id, "<rsp:SendResponse/>")
            if action == "Receive":
                desired = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
                command_id = desired.get("CommandId", "") if desired is not None else ""
                out = base64.b64encode(recorder.finish(command_id)).decode()
                body = (f'<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="{command_id}">{out}</rsp:Stream>'
                        f'<rsp:Stream Name="stdout" CommandId="{command_id}" End="true"></rsp:Stream>'
                        f'<rsp:Stream Name="stderr" CommandId="{command_id}" End="true"></rsp:Stream>'
                        f'<rsp:CommandState CommandId="{command_id}" State="{DONE}"><rsp:ExitCode>0</rsp:ExitCode>'
                        "</rsp:CommandState></rsp:ReceiveResponse>")
                return _envelope(f"{SHELL}/ReceiveResponse", message_id, body)
            if action == "Signal":
                return _envelope(f"{SHELL}/SignalResponse", message_id, "<rsp:SignalResponse/>")
            if action == "Delete":
                return _envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", message_id, "")
            return _envelope(f"{SHELL}/Fault", message_id, f"<s:Fault><s:Reason>{action}</s:Reason></s:Fault>")

    return WsMan


def main() -> None:
    parser = argparse.ArgumentParser(prog="tests.winrm_endpoint")
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--record", required=True, type=Path)
    parser.add_argument("--stdout", default='{"changed": false}', help="the canned stdout of every command")
    parser.add_argument("--stdout-for", action="append", default=[], metavar="MODULE=JSON")
    parser.add_argument("--stdout-file-when", action="append", default=[], metavar="TEXT=FILE")
    args = parser.parse_args()
    address, _, port = args.listen.rpartition(":")
    stdout_for = dict(item.split("=", 1) for item in args.stdout_for)
    server = ThreadingHTTPServer((address, int(port)), handler(Recorder(
        args.record, args.stdout, stdout_for,
        {text: Path(f) for text, _, f in (item.partition("=") for item in args.stdout_file_when)})))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
