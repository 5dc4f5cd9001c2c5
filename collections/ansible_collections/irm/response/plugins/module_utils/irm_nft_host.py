"""What irm_nft does on a host: apply one nftables table atomically under a dead-man timer, confirm it,
or read it. Python standard library only, so the same code runs two ways:

- inside the irm_nft module (AnsiballZ, AnsibleModule), the plain Ansible path;
- sent whole on the connection's stdin by the irm_nft action plugin and run by the host's interpreter,
  one ``python3 -I -c`` per call: no AnsiballZ payload and no ``module_utils.basic`` import, which cost
  about ten times this code's own run on every host of a stage;
- sent the same way by irm's warm path as a session (``stdin_session``): one process per host and stage
  runs the apply, then waits on its stdin for the controller's next request (the confirm, once the
  controller has proven the management path), so one remote start carries both calls.

``run(params, check_mode)`` returns the result as a dict; a failure is ``failed: True`` with ``msg``.
"""

import contextlib
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import time

SPEC = {
    "state": {"type": "str", "choices": ["applied", "confirmed", "read", "rehearsed", "media"], "default": "applied"},
    "ruleset": {"type": "str"},
    "fingerprint": {"type": "str"},
    "token": {"type": "str", "default": "manual"},
    "takeover_tokens": {"type": "list", "elements": "str", "default": []},
    "expect": {"type": "list", "elements": "str", "default": []},
    "state_dir": {"type": "path"},
    "table": {"type": "str", "default": "irm"},
    "confirm_timeout": {"type": "int", "default": 60},
    "deadman": {"type": "bool", "default": True},
    "absent": {"type": "bool", "default": False},
    "reach": {"type": "list", "elements": "dict"},  # handled by the action plugin
    "policy": {"type": "dict"},  # rendered into ruleset by the action plugin
    "reach_timeout": {"type": "float", "default": 5},
    "boot_unit": {"type": "bool", "default": False},
    "nft_path": {"type": "path", "default": "/usr/sbin/nft"},
    # removable storage, changed in the same call (applied) or alone (state=media): state, dir, unload
    "media": {"type": "dict"},
}
REQUIRED_IF = [("state", "applied", ("ruleset", "fingerprint", "state_dir")),
               ("state", "confirmed", ("fingerprint", "state_dir")), ("state", "read", ("state_dir",)),
               ("state", "rehearsed", ("state_dir",)), ("state", "media", ("media",))]
# irm's modprobe rule: the whole file, replaced whole or removed
MEDIA_FILE = "irm-usb-storage.conf"
MEDIA_RULE = ("# irm containment: removable storage cannot carry the worm\n"
              "install usb-storage /bin/false\nblacklist usb-storage\n")
UNIT = "/etc/systemd/system/irm-firewall.service"
_TRUE = ("yes", "on", "1", "true", "y", "t")
_FALSE = ("no", "off", "0", "false", "n", "f", "")


class Failed(Exception):
    """Ends the call with ``failed: True``: ``msg`` and whatever else the result carries."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = dict(result, failed=True, msg=msg)


def _coerce(name, value, spec):
    kind = spec.get("type", "str")
    try:
        if kind in ("str", "path"):
            value = str(value)
            return os.path.expandvars(os.path.expanduser(value)) if kind == "path" else value
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError(value)
        if kind == "dict":
            if not isinstance(value, dict):
                raise ValueError(value)
            return value
        if kind == "list":
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(v) for v in items] if spec.get("elements") == "str" else items
    except (TypeError, ValueError):
        pass
    raise Failed(f"argument '{name}' is of type {_type_name(value)} and cannot be read as {kind}")


def _type_name(value):
    """The plain type of a value (the controller's tagged strings and containers read as str, dict, ...)."""
    return next((t.__name__ for t in (bool, int, float, str, dict, list) if isinstance(value, t)),
                type(value).__name__)


def normalize(params):
    """The arguments checked, converted and completed with defaults, as AnsibleModule would."""
    unknown = sorted(set(params) - set(SPEC))
    if unknown:
        raise Failed(f"Unsupported parameters for (irm_nft) module: {', '.join(unknown)}")
    out = {}
    for name, spec in SPEC.items():
        value = params.get(name)
        if value is None:
            if spec.get("required"):
                raise Failed(f"missing required arguments: {name}")
            default = spec.get("default")
            out[name] = list(default) if isinstance(default, list) else default
            continue
        value = _coerce(name, value, spec)
        if "choices" in spec and value not in spec["choices"]:
            raise Failed(f"value of {name} must be one of: {', '.join(spec['choices'])}, got: {value}")
        out[name] = value
    for key, when, needed in REQUIRED_IF:
        missing = [n for n in needed if out.get(key) == when and out.get(n) is None]
        if missing:
            raise Failed(f"{key} is {when} but all of the following are missing: {', '.join(missing)}")
    return out


def _cmd(args, data=None):
    proc = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          universal_newlines=True, env=dict(os.environ, LC_ALL="C"))
    return proc.returncode, proc.stdout, proc.stderr


def _bin(name):
    extra = ["/sbin", "/usr/sbin", "/usr/local/sbin"]
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", "/usr/bin:/bin"), *extra]))
    if not found:
        raise Failed(f"Failed to find required executable \"{name}\" in paths: {os.environ.get('PATH', '')}")
    return found


def _read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def _read_regular(path):
    """A regular file's text; None for anything else there (missing, a link, a FIFO, a device: never
    opened, so a FIFO planted in its place cannot hang the call)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
    except OSError:
        return None
    return _read(path)


def _write(path, text, mode=0o640):
    """``text`` into ``path`` whole: a new temporary file beside it (whatever was at its name removed,
    never written through), renamed over it (a link or FIFO at ``path`` is replaced, never followed)."""
    tmp = f"{path}.tmp"
    with contextlib.suppress(FileNotFoundError):  # a leftover (or a link, or a hard link to another file)
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _start_time(pid):
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def _timer(pidfile):
    """(pid, token) of the armed timer if that very process is alive, else None."""
    text = _read(pidfile)
    if not text:
        return None
    parts = text.split()
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    pid, started, token = int(parts[0]), parts[1], parts[2]
    return (pid, token) if _start_time(pid) == started else None


def _stop_timer(pidfile):
    """Stops the armed timer (only the process the pidfile names, checked by its start time).
    Returns the token it was armed for, or None when nothing was armed. A kill that fails fails."""
    armed = _timer(pidfile)
    if armed is not None:
        pid = armed[0]
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except OSError as exc:
            raise Failed(f"cannot stop the dead-man timer (pid {pid}): {exc}") from None
        for _ in range(50):
            if _start_time(pid) is None:
                break
            time.sleep(0.02)
        else:
            raise Failed(f"the dead-man timer (pid {pid}) is still alive after SIGTERM")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    return armed[1] if armed else None


# The dead-man timer itself, run by the host's Python (a transient unit's new interpreter under systemd, else
# a forked copy of the one that armed it, in a session of its own): it writes its pidfile (pid, start time, token),
# sleeps, then takes the state directory's lock, the one apply and confirm hold from reading the timer to
# writing: a confirm that holds it stops the timer before it can revert, and a revert that holds it lands
# whole before a confirm reads anything. nft is run by its absolute path.
TIMER = r"""
import fcntl, os, subprocess, sys, time
state_dir, revert, seconds, token, nft = sys.argv[1:6]
pidfile = os.path.join(state_dir, "deadman.pid")
me = os.getpid()
with open("/proc/%d/stat" % me) as fh:
    started = fh.read().rsplit(")", 1)[-1].split()[19]
tmp = pidfile + ".tmp"
with open(tmp, "w") as fh:
    fh.write("%d %s %s\n" % (me, started, token))
os.replace(tmp, pidfile)
time.sleep(int(seconds))
lock = os.open(os.path.join(state_dir, "irm_nft.lock"), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
rc = subprocess.call([nft, "-f", revert], stdin=subprocess.DEVNULL)
if rc == 0:
    with open(os.path.join(state_dir, "deadman.state"), "w") as fh:
        fh.write("reverted %s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), token))
os.unlink(pidfile)
"""


def _own_init():
    """This process shares PID 1's network namespace: a transient systemd unit would act on our network."""
    try:
        return os.readlink("/proc/self/ns/net") == os.readlink("/proc/1/ns/net")
    except OSError:
        return False


def _timer_command(state_dir, revert, seconds, token, nft):
    """The timer's command line: under systemd (in PID 1's network namespace) a transient unit, out of the
    login session's cgroup so that the session ending does not kill it; otherwise a process of its own
    session started here."""
    argv = [sys.executable, "-I", "-c", TIMER, state_dir, revert, str(int(seconds)), token, nft]
    systemd_run = shutil.which("systemd-run")
    if os.path.isdir("/run/systemd/system") and systemd_run and _own_init():
        unit = "irm-deadman-" + "".join(c if c.isalnum() else "-" for c in token)[:40] + f"-{os.getpid()}"
        return [systemd_run, "--quiet", "--collect", f"--unit={unit}", "--property=KillMode=process", *argv]
    return argv


def _arm(state_dir, revert, seconds, token, nft="nft"):
    """Start the timer detached from the connection that armed it; wait until its pidfile names it."""
    pidfile = os.path.join(state_dir, "deadman.pid")
    statefile = os.path.join(state_dir, "deadman.state")
    command = _timer_command(state_dir, revert, seconds, token, nft)
    if command[0] != sys.executable:
        rc, _, err = _cmd(command)
        if rc != 0:
            raise Failed(f"the dead-man timer's unit did not start: {err.strip()}")
    else:
        pid = os.fork()
        if pid == 0:  # the timer: a new session, no descriptor of the connection that armed it
            try:
                os.setsid()
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 65536)
                # the same code a transient unit runs, in this forked copy of the interpreter: no second
                # Python to start on every host of a stage
                sys.argv = ["irm-deadman", *command[4:]]
                exec(compile(TIMER, "irm-deadman", "exec"), {"__name__": "__irm_deadman__"})
                os._exit(0)
            finally:
                os._exit(127)
        os.waitpid(pid, os.WNOHANG)
    for _ in range(250):
        if _timer(pidfile) is not None:
            break
        time.sleep(0.02)
    else:
        return False
    _write(statefile, f"armed {_now()} {int(seconds)} {token}\n")
    return True


# The canonical form of an irm table: what it enforces, read from nftables itself, never from a comment or
# a file irm wrote. Chains by name (type, hook, priority, default), rules in order, each reduced to its
# action, networks (collapsed: nftables merges adjacent prefixes of a set), protocol, port ranges and
# connection states; anything else (another statement, another operator, a named set) is kept verbatim as
# "foreign" so that it can never match a plan. Comments and handles carry no enforcement and are left
# out. The controller reduces a planned policy to the same form: two tables enforce the same thing
# exactly when their fingerprints are equal.
_HOOK_PRIO = {"input": 0, "forward": 0, "output": 0}


def _collapse(nets):
    return [str(n) for n in ipaddress.collapse_addresses(nets)]


def _port_ranges(pairs):
    merged = []
    for low, high in sorted(pairs):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def _rule_of(action=None, src=(), dst=(), protocol=None, dports=(), sports=(), ct_state=(), tcp_flags=(),
             foreign=()):
    rule = {"action": action}
    for key, value in (("src", _collapse(src)), ("dst", _collapse(dst)), ("protocol", protocol),
                       ("dports", _port_ranges(dports)), ("sports", _port_ranges(sports)),
                       ("ct_state", sorted(set(ct_state))), ("tcp_flags", sorted(set(tcp_flags))),
                       ("foreign", list(foreign))):
        if value:
            rule[key] = value
    return rule


def canonical_policy(policy):
    """The canonical form of irm's abstract policy as the renderer writes it (None: no table at all)."""
    chains = {name: (policy.get(name) or {}) for name in _HOOK_PRIO}
    if all(not (c.get("rules") or []) and c.get("default", "accept") == "accept" for c in chains.values()):
        return None
    out = {}
    for name, spec in chains.items():
        rules = []
        for r in spec.get("rules") or []:
            protocol = r.get("protocol")
            rules.append(_rule_of(
                action=r.get("action"),
                src=[ipaddress.IPv4Network(str(n), strict=False) for n in r.get("src") or []],
                dst=[ipaddress.IPv4Network(str(n), strict=False) for n in r.get("dst") or []],
                protocol=protocol, dports=[(int(p), int(p)) for p in r.get("dports") or []],
                sports=[(int(p), int(p)) for p in r.get("sports") or []],
                ct_state=("established", "related") if r.get("established") else (),
                tcp_flags=("ack",) if r.get("tcp_ack") else ()))
        out[name] = {"type": "filter", "hook": name, "prio": _HOOK_PRIO[name],
                     "policy": spec.get("default", "accept"), "rules": rules}
    return {"chains": out, "other": []}


def _nets_of(right):
    """Networks of a match's right side: an address, a prefix, a range or an anonymous set of them."""
    items = right["set"] if isinstance(right, dict) and "set" in right else [right]
    nets = []
    for item in items:
        if isinstance(item, str):
            nets.append(ipaddress.IPv4Network(item))
        elif isinstance(item, dict) and "prefix" in item:
            nets.append(ipaddress.IPv4Network(f"{item['prefix']['addr']}/{item['prefix']['len']}"))
        elif isinstance(item, dict) and "range" in item:
            low, high = (ipaddress.IPv4Address(a) for a in item["range"])
            nets.extend(ipaddress.summarize_address_range(low, high))
        else:
            raise ValueError(item)
    return nets


def _ports_of(right):
    items = right["set"] if isinstance(right, dict) and "set" in right else [right]
    pairs = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            pairs.append((item, item))
        elif isinstance(item, dict) and "range" in item and all(isinstance(v, int) for v in item["range"]):
            pairs.append(tuple(item["range"]))
        else:
            raise ValueError(item)
    return pairs


def _counted(expr):
    """A ``counter`` statement: it counts what the rule matches and changes nothing it enforces."""
    return isinstance(expr, dict) and list(expr) == ["counter"]


def _canonical_rule(exprs):
    """One live rule in canonical form (counters left out: they enforce nothing); an expression irm
    never writes is kept as foreign."""
    found = {"action": None, "src": [], "dst": [], "protocol": None, "dports": [], "sports": [],
             "ct_state": [], "tcp_flags": [], "foreign": []}
    for expr in exprs:
        if _counted(expr):
            continue
        try:
            _read_expr(expr, found)
        except (KeyError, TypeError, ValueError):
            found["foreign"].append(json.dumps(expr, sort_keys=True))
    return _rule_of(**found)


def _read_expr(expr, found):
    if list(expr) in (["accept"], ["drop"]) and found["action"] is None:
        found["action"] = next(iter(expr))
        return
    match = expr["match"]
    left, right, op = match["left"], match["right"], match["op"]
    payload, meta, ct = left.get("payload"), left.get("meta"), left.get("ct")
    if found["action"] is not None:
        raise ValueError("a match after the verdict")
    if payload and op == "==" and payload.get("protocol") == "ip" and payload.get("field") in ("saddr", "daddr"):
        key = "src" if payload["field"] == "saddr" else "dst"
        if found[key]:
            raise ValueError("two matches on one field")
        found[key] = _nets_of(right)
    elif payload and op == "==" and payload.get("protocol") in ("tcp", "udp") \
            and payload.get("field") in ("dport", "sport") and found["protocol"] in (None, payload["protocol"]):
        key = payload["field"] + "s"
        if found[key]:
            raise ValueError("two matches on one field")
        found["protocol"] = payload["protocol"]
        found[key] = _ports_of(right)
    elif meta and meta.get("key") == "l4proto" and op == "==" and right in ("tcp", "udp") \
            and found["protocol"] in (None, right):
        found["protocol"] = right
    elif _is_tcp_ack(left, right, op) and found["protocol"] in (None, "tcp") and not found["tcp_flags"]:
        found["protocol"], found["tcp_flags"] = "tcp", ["ack"]
    elif ct and ct.get("key") == "state" and op in ("in", "==") and not found["ct_state"]:
        found["ct_state"] = [right] if isinstance(right, str) else [str(s) for s in right]
    else:
        raise ValueError(expr)


def _is_tcp_ack(left, right, op):
    """``tcp flags & ack == ack``: the one flag test irm writes."""
    masked = left.get("&") if isinstance(left, dict) else None
    return (op == "==" and right == "ack" and isinstance(masked, list) and len(masked) == 2
            and masked[0] == {"payload": {"protocol": "tcp", "field": "flags"}} and masked[1] == "ack")


def canonical_live(doc):
    """The canonical form of ``nft -j list table`` output (None when it lists no table)."""
    chains, other, table = {}, [], False
    for item in (doc or {}).get("nftables", []):
        kind = next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None
        body = item.get(kind) if kind else None
        if kind == "metainfo":
            continue
        if kind == "table":
            table = True
        elif kind == "chain" and isinstance(body, dict):
            chains[body.get("name")] = {"type": body.get("type"), "hook": body.get("hook"), "prio": body.get("prio"),
                                        "policy": body.get("policy"), "rules": []}
        elif kind == "rule" and isinstance(body, dict) and body.get("chain") in chains:
            chains[body["chain"]]["rules"].append(_canonical_rule(body.get("expr") or []))
        else:
            other.append(json.dumps({kind: {k: v for k, v in (body or {}).items() if k != "handle"}}
                                    if isinstance(body, dict) else item, sort_keys=True))
    return {"chains": chains, "other": sorted(other)} if table else None


def counters(doc):
    """What the table's counters saw: rule comment -> packets (summed over rules of one comment). irm
    counts the drops of the propagation vectors' ports; their comments name the sub-area and vector."""
    out = {}
    for item in (doc or {}).get("nftables", []):
        body = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(body, dict):
            continue
        for expr in body.get("expr") or []:
            if _counted(expr) and isinstance(expr["counter"], dict):
                comment = str(body.get("comment", ""))
                out[comment] = out.get(comment, 0) + int(expr["counter"].get("packets", 0))
    return out


def fingerprint(canonical):
    """``absent`` (no table) or a digest of the canonical form."""
    if canonical is None:
        return "absent"
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "irm-nft-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def policy_fingerprint(policy):
    return fingerprint(canonical_policy(policy))


def _fingerprint_of(text):
    """The fingerprint a ruleset file irm rendered was planned with (its table comment): the host's record
    of what it last confirmed, never taken for what is live."""
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith('comment "irm-'):
            return line.split('"')[1]
    return None


class Live:
    """The irm table as nftables holds it now: its canonical form, fingerprint and text (for diffs)."""

    def __init__(self, nft, table):
        rc, out, err = _cmd([nft, "-j", "list", "table", "inet", table])
        self.canonical, self.error, self.counters = None, None, {}
        if rc == 0:
            try:
                doc = json.loads(out)
                self.canonical, self.counters = canonical_live(doc), counters(doc)
            except ValueError:
                self.error = "nft -j printed no JSON"
        elif "No such file or directory" not in err:
            self.error = err.strip() or f"nft exited {rc}"
        self.fingerprint = "unknown" if self.error else fingerprint(self.canonical)
        self._nft, self._table = nft, table

    def text(self):
        """The table as nft lists it, counters without their values (-s): a diff shows rules, not traffic."""
        rc, out, _ = _cmd([self._nft, "-s", "list", "table", "inet", self._table])
        return out if rc == 0 else ""


LOCK_WAIT = 60.0  # seconds a call waits for another irm_nft call on the same host and state directory


def run(params, check_mode=False):
    """One irm_nft call on this host: the result dict (``failed: True`` and ``msg`` when it failed).
    With ``media``, an apply also changes removable storage, after the table (a host whose table
    failed is left as it was): what it could not do is ``irm_media_error``, which fails the task only
    once the table is confirmed (a modprobe that refuses never leaves the vectors open)."""
    facts = {}
    try:
        p = normalize(params)
        if p["state"] == "media":
            changed, what = media(p["media"], check_mode)
            return {"changed": changed, "irm_media": what}
        with _exclusive(p, check_mode):
            result = _run(p, check_mode, facts)
    except Failed as exc:
        return dict(facts, **exc.result)
    if p["media"] and p["state"] == "applied":
        try:
            changed, what = media(p["media"], check_mode)
            result = dict(result, changed=bool(result.get("changed")) or changed, irm_media=what)
        except Failed as exc:
            result = dict(result, irm_media_error=str(exc))
    return result


def media(spec, check_mode=False):
    """irm's modprobe rule for usb-storage (``present``: written, and the module unloaded when ``unload``;
    ``absent``: removed): (changed, what was done). Failed when it cannot."""
    if not isinstance(spec, dict) or set(spec) - {"state", "dir", "unload"}:
        raise Failed(f"media takes state, dir and unload, got: {sorted(spec) if isinstance(spec, dict) else spec}")
    state, folder = spec.get("state", "present"), spec.get("dir") or "/etc/modprobe.d"
    unload = _coerce("media.unload", spec.get("unload", True), {"type": "bool"})
    if state not in ("present", "absent") or not isinstance(folder, str) or not folder.startswith("/"):
        raise Failed(f"media: state must be present or absent and dir an absolute path, got: {state}, {folder}")
    path = os.path.join(folder, MEDIA_FILE)
    if state == "absent":
        if not os.path.lexists(path):
            return False, "unchanged"
        if not check_mode:
            try:
                os.unlink(path)
            except OSError as exc:
                raise Failed(f"{path} could not be removed: {exc}") from None
        return True, "lifted"
    changed = _read_regular(path) != MEDIA_RULE
    if changed and not check_mode:
        try:
            os.makedirs(folder, exist_ok=True)
            _write(path, MEDIA_RULE, 0o644)
        except OSError as exc:
            raise Failed(f"{path} could not be written: {exc}") from None
    what = "blocked" if changed else "unchanged"
    loaded = any(line.startswith("usb_storage ") for line in (_read("/proc/modules") or "").splitlines())
    if unload and loaded and not check_mode:
        rc, _, err = _cmd([_bin("modprobe"), "-r", "usb_storage"])
        if rc != 0:
            raise Failed(f"usb_storage is in use and stays loaded ({err.strip() or rc})")
        changed, what = True, f"{what}, usb_storage unloaded"
    return changed, what


@contextlib.contextmanager
def _exclusive(p, check_mode):
    """One changing call at a time per state directory (an flock on its lock file): two runs (two operators,
    ``irm prepare`` beside ``irm contain``) never interleave between reading the timer and arming one.
    Reads and check mode take no lock; the dead-man timer's process does not inherit it."""
    if check_mode or p["state"] == "read":
        yield
        return
    os.makedirs(p["state_dir"], mode=0o750, exist_ok=True)
    fd = os.open(os.path.join(p["state_dir"], "irm_nft.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Failed(f"another irm_nft call has held {p['state_dir']} for {LOCK_WAIT:.0f}s: "
                                 "nothing done") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _run(p, check_mode, facts):
    state_dir = p["state_dir"]
    pidfile = os.path.join(state_dir, "deadman.pid")
    confirmed_path = os.path.join(state_dir, "confirmed.nft")
    desired_path = os.path.join(state_dir, "desired.nft")
    nft = _bin("nft")
    live = Live(nft, p["table"])
    armed = _timer(pidfile)
    facts.update(irm_live_fingerprint=live.fingerprint, irm_armed_token=armed[1] if armed else "")

    if p["state"] == "read":
        return dict(facts, changed=False, deadman="armed" if armed else "none", irm_live_rules=live.canonical,
                    irm_counters=live.counters, **({"irm_live_error": live.error} if live.error else {}))
    if p["state"] == "confirmed":
        return _confirm(p, check_mode, pidfile, armed, facts, desired_path, confirmed_path)
    if p["state"] == "rehearsed":
        return _rehearse(p, check_mode, nft, pidfile, armed, facts, confirmed_path)

    ruleset = p["ruleset"] if p["ruleset"].endswith("\n") else p["ruleset"] + "\n"
    in_place = live.fingerprint == ("absent" if p["absent"] else p["fingerprint"])
    last_confirmed = _read(confirmed_path)
    confirmed_in_place = (_fingerprint_of(last_confirmed) == p["fingerprint"]) if not p["absent"] \
        else last_confirmed is None or not _fingerprint_of(last_confirmed)
    if p["expect"] and not in_place and not check_mode:
        _compare_and_swap(p, live.fingerprint, _fingerprint_of(last_confirmed) or "absent")
    if armed and armed[1] != p["token"] and armed[1] not in p["takeover_tokens"]:
        raise Failed(f"another run's dead-man timer (token {armed[1]}, pid {armed[0]}) is armed here: "
                     "wait for it to be confirmed or to expire")
    if in_place and confirmed_in_place and not armed:
        return dict(facts, changed=False, live_fingerprint_matched=True, deadman="none", irm_confirmed=True)

    diff = {"before": live.text(), "after": ruleset, "before_header": f"{p['table']} (live)",
            "after_header": f"{p['table']} (planned)"}
    if check_mode:
        # Validation only here: when applying, nft -f is one transaction that changes nothing on error.
        rc, _, err = _cmd([nft, "-c", "-f", "-"], data=ruleset)
        if rc != 0:
            raise Failed(f"nft rejected the rendered ruleset: {err.strip()}", diff=diff)
        return dict(facts, changed=not in_place, live_fingerprint_matched=in_place, diff=diff, deadman="none")

    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    if armed:  # a timer of this run (a retry) or of a dead run: replaced by this apply's own
        _stop_timer(pidfile)
    revert = os.path.join(state_dir, "revert.nft")
    # the confirmed file is itself a whole-table ruleset (create, delete, rebuild)
    _write(revert, last_confirmed or f"table inet {p['table']}\ndelete table inet {p['table']}\n")
    _write(desired_path, ruleset)
    if p["deadman"] and not _arm(state_dir, revert, p["confirm_timeout"], p["token"], nft):
        raise Failed("the dead-man timer did not start: nothing applied")
    rc, _, err = _cmd([nft, "-f", desired_path])
    applied_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    if rc != 0:
        _stop_timer(pidfile)
        raise Failed(f"nft -f failed, nothing changed: {err.strip()}", diff=diff)
    if not p["deadman"]:
        _record_confirmed(desired_path, confirmed_path, p["absent"])
    facts["irm_live_fingerprint"] = Live(nft, p["table"]).fingerprint
    return dict(facts, changed=not in_place, live_fingerprint_matched=in_place, diff=diff,
                deadman="armed" if p["deadman"] else "none", irm_applied_at=applied_at)


def _compare_and_swap(p, live_fp, last_fp):
    """An apply replaces only the table it expects (``expect``: what its journal last recorded here). A live
    table that is not one of them is drift from that table when the host's own record says that table was
    the last one confirmed here (a flushed chain, a deleted rule: re-applied); otherwise another journal
    or another SOC machine changed the host, and nothing is applied."""
    if live_fp in p["expect"] or last_fp in p["expect"]:
        return
    raise Failed(f"compare-and-swap refused: the live table is {live_fp} (last confirmed here: {last_fp}), not "
                 f"one this run expects to replace ({', '.join(p['expect'])}): another journal or SOC machine "
                 "changed this host; nothing applied")


def _rehearse(p, check_mode, nft, pidfile, armed, facts, confirmed_path):
    """The commit-confirmed round trip with no change (irm prepare): arm a timer that would restore the
    last confirmed ruleset, see it alive, stop it as a confirmation does, and see nothing left armed.
    Refused while another timer is armed, or while the live table is not the confirmed one (a timer
    that fired then would change the host)."""
    if armed:
        raise Failed(f"a dead-man timer (token {armed[1]}, pid {armed[0]}) is armed here: no rehearsal now")
    last_confirmed = _read(confirmed_path)
    confirmed_fp = _fingerprint_of(last_confirmed) or "absent"
    if facts["irm_live_fingerprint"] != confirmed_fp:
        raise Failed(f"the live table is {facts['irm_live_fingerprint']}, the confirmed one {confirmed_fp}: "
                     "no rehearsal on a host whose table is not its confirmed one")
    if check_mode:
        return dict(facts, changed=False, deadman="none")
    os.makedirs(p["state_dir"], mode=0o750, exist_ok=True)
    revert = os.path.join(p["state_dir"], "revert.nft")
    _write(revert, last_confirmed or f"table inet {p['table']}\ndelete table inet {p['table']}\n")
    if not _arm(p["state_dir"], revert, p["confirm_timeout"], p["token"], nft):
        raise Failed("the dead-man timer did not start")
    seen = _timer(pidfile)
    stopped = _stop_timer(pidfile)
    left = _timer(pidfile)
    _write(os.path.join(p["state_dir"], "deadman.state"), f"rehearsed {_now()} {p['token']}\n")
    if seen is None or stopped != p["token"] or left is not None:
        raise Failed(f"the rehearsal's timer was {'not seen armed' if seen is None else 'still armed after its stop'}")
    after = Live(nft, p["table"]).fingerprint
    if after != facts["irm_live_fingerprint"]:
        raise Failed(f"the live table changed during the rehearsal: {facts['irm_live_fingerprint']} -> {after}")
    return dict(facts, changed=False, deadman="none", irm_rehearsed=True)


def _record_confirmed(desired_path, confirmed_path, absent):
    """The confirmed ruleset is what the timer restores and what a boot loads (none: no irm table)."""
    if absent:
        if os.path.exists(confirmed_path):
            os.unlink(confirmed_path)
        return
    _write(confirmed_path, _read(desired_path) or "")


def boot_unit_text(nft_path, confirmed_path):
    """The unit a boot runs: after nftables.service (whose ``flush ruleset`` would wipe irm's table) and
    after the state directory is mounted, before the network comes up."""
    return ("[Unit]\nDescription=irm: load the last confirmed irm nftables table\nDefaultDependencies=no\n"
            "After=nftables.service\nBefore=network-pre.target\nWants=network-pre.target\n"
            f"RequiresMountsFor={os.path.dirname(confirmed_path)}\n"
            f"ConditionPathExists={confirmed_path}\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart={nft_path} -f {confirmed_path}\n\n[Install]\nWantedBy=sysinit.target\n")


def _boot_unit(nft_path, confirmed_path):
    """A reboot loads the last confirmed table before the network comes up, never an unconfirmed one."""
    if not os.path.isdir("/run/systemd/system"):
        return
    text = boot_unit_text(nft_path, confirmed_path)
    if _read(UNIT) != text:
        _write(UNIT, text)
        os.chmod(UNIT, 0o644)
        _cmd(["systemctl", "daemon-reload"])
    rc, _, err = _cmd(["systemctl", "enable", "irm-firewall.service"])
    if rc != 0:
        raise Failed(f"confirmed, but the boot unit could not be enabled: {err.strip()}")


def _confirm(p, check_mode, pidfile, armed, facts, desired_path, confirmed_path):
    live_fp = facts["irm_live_fingerprint"]
    wanted = "absent" if p["absent"] else p["fingerprint"]
    if check_mode:
        return dict(facts, changed=bool(armed), deadman="armed" if armed else "none")
    if armed is None and live_fp == wanted and _fingerprint_of(_read(confirmed_path)) == (
            None if p["absent"] else wanted):
        return dict(facts, changed=False, deadman="none", irm_confirmed=True)  # already confirmed
    if armed is None or armed[1] != p["token"]:
        state = (_read(os.path.join(p["state_dir"], "deadman.state")) or "no timer state").strip()
        raise Failed(f"no dead-man timer armed for {p['token']} any more ({state}); live table: {live_fp}")
    if live_fp != wanted:
        raise Failed(f"the live table is {live_fp}, not the planned {wanted}: not confirmed "
                     "(the dead-man timer will restore the last confirmed ruleset)")
    stopped = _stop_timer(pidfile)
    after = Live(_bin("nft"), p["table"]).fingerprint  # read again: a revert that landed is never confirmed
    if stopped != p["token"] or after != wanted:
        raise Failed(f"the live table is {after} after the dead-man timer was stopped, not the planned {wanted}: "
                     "not confirmed (the timer had already restored the last confirmed ruleset)")
    _record_confirmed(desired_path, confirmed_path, p["absent"])
    _write(os.path.join(p["state_dir"], "deadman.state"), f"confirmed {_now()} {p['token']}\n")
    if p["boot_unit"]:
        _boot_unit(p["nft_path"], confirmed_path)
    facts["irm_armed_token"] = ""
    return dict(facts, changed=True, deadman="confirmed", irm_confirmed=True)


def stdin_main(request):
    """Entry point when the action plugin runs this file on the host: one JSON line on stdout."""
    result = run(request["params"], bool(request.get("check_mode")))
    print(json.dumps(result))


def _next_request(pending, wait):
    """The next request line on fd 0 (the session's stdin), or None when it closes or stays silent for
    ``wait`` seconds. ``pending``: the bytes read past the last line, kept between calls."""
    deadline = time.monotonic() + wait
    while b"\n" not in pending[0]:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([0], [], [], left)[0]:
            return None
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        pending[0] += chunk
    line, pending[0] = pending[0].split(b"\n", 1)
    return json.loads(line) if line.strip() else None


def stdin_session(request):
    """Entry point of the warm path's session: this call, then each request the controller sends on stdin,
    one JSON line each, every result one line on stdout, until stdin closes, an empty line, or ``wait``
    seconds of silence (then the dead-man timer has reverted an apply nobody confirmed). The process
    holds no lock while it waits: a confirm takes it again, as a call of its own would."""
    wait = float(request.get("wait") or 0)
    pending = [b""]
    while request is not None:
        result = run(request["params"], bool(request.get("check_mode")))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        try:
            request = _next_request(pending, wait) if wait > 0 else None
        except ValueError:
            return
