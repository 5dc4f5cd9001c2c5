"""The lab's emulated IOS command line: modes, the access lists and interfaces it keeps, what it refuses
and how, and the revert timer (with a clock the test drives)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from orchestrator.lab import ios_enforce
from orchestrator.lab.ios_cli import INVALID, NO_PENDING, CliError, Config, Device, Interface, Session, parse_ace
from tests.conftest import module_util

WAN, LAN = "GigabitEthernet0/0", "GigabitEthernet0/1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _device(clock: Clock | None = None, archive: bool = True) -> tuple[Device, list[Config]]:
    seen: list[Config] = []
    config = Config(hostname="gw-ios", interfaces={WAN: Interface(WAN, "198.18.0.22 255.255.255.252"),
                                                   LAN: Interface(LAN, "198.18.48.1 255.255.255.0")},
                    archive_path="flash:archive" if archive else "")
    return Device(config, on_change=seen.append, clock=clock or Clock(), minute=60), seen


def _run(session: Session, *lines: str) -> list[str]:
    return [session.execute(line) for line in lines]


def test_modes_and_prompts_follow_ios() -> None:
    device, _ = _device()
    s = device.session()
    assert s.prompt() == "gw-ios>"
    _run(s, "enable")
    assert s.prompt() == "gw-ios#"
    _run(s, "conf t")  # any unique prefix of each keyword
    assert s.prompt() == "gw-ios(config)#"
    _run(s, "ip access-list extended IRM-X-IN")
    assert s.prompt() == "gw-ios(config-ext-nacl)#"
    _run(s, "exit", f"int {LAN}")
    assert s.prompt() == "gw-ios(config-if)#"
    _run(s, "end")
    assert s.prompt() == "gw-ios#"
    assert s.execute("configure terminal") == "Enter configuration commands, one per line.  End with CNTL/Z.\n"


def test_an_unknown_word_is_refused_with_the_caret_under_it() -> None:
    device, seen = _device()
    s = device.session()
    _run(s, "enable")
    assert s.execute("show ip bgp") == " " * len("gw-ios#show ip ") + "^\n" + INVALID + "\n"
    assert s.execute("show") == "% Incomplete command.\n"
    assert s.execute("co") == '% Ambiguous command:  "co"\n'  # configure, copy
    assert s.execute("bogus") == " " * len("gw-ios#") + "^\n" + INVALID + "\n"
    _run(s, "configure terminal", "ip access-list extended IRM-X-IN")
    line = "10 permit tcp any host 198.18.48.300 eq 22"
    assert s.execute(line) == " " * (len("gw-ios(config-ext-nacl)#") + line.index("198.18.48.300")) + "^\n" \
        + INVALID + "\n"
    assert s.execute("permit tcp any") == "% Incomplete command.\n"
    assert device.config.acls == {"IRM-X-IN": []} and seen == []


@pytest.mark.parametrize(("words", "text"), [
    ("permit tcp host 198.18.0.2 any eq 22", "permit tcp host 198.18.0.2 any eq 22"),
    ("deny tcp any any eq 445 4445", "deny tcp any any eq 445 4445"),
    ("permit tcp any eq 22 198.18.0.2 0.0.0.0 established", "permit tcp any eq 22 198.18.0.2 0.0.0.0 established"),
    ("permit udp 198.18.48.0 0.0.0.255 any range 1000 2000", "permit udp 198.18.48.0 0.0.0.255 any range 1000 2000"),
    ("deny ip any any log", "deny ip any any log"),
    ("remark irm: vector tcp/4445", "remark irm: vector tcp/4445"),
])
def test_entries_are_kept_as_ios_prints_them(words: str, text: str) -> None:
    assert parse_ace(words.split()) == text


@pytest.mark.parametrize(("words", "word"), [
    ("allow ip any any", 0), ("permit sctp any any", 1), ("permit tcp any any eq 70000", 5),
    ("permit ip any any eq 22", 4), ("permit udp any any established", 4), ("permit tcp 10.0.0.0 any", 3),
])
def test_entries_ios_refuses_name_the_word(words: str, word: int) -> None:
    with pytest.raises(CliError) as caught:
        parse_ace(words.split())
    assert caught.value.message == INVALID and caught.value.word == word


def test_access_lists_and_interfaces_show_as_ios_shows_them() -> None:
    device, seen = _device()
    s = device.session()
    _run(s, "enable", "configure terminal", "ip access-list extended IRM-X-IN",
         "10 permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22", "20 deny tcp any any eq 4445",
         "permit ip any any", "exit", f"interface {LAN}", "ip access-group IRM-X-IN out", "end")
    assert s.execute("show access-lists") == (
        "Extended IP access list IRM-X-IN\n"
        "    10 permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22\n"
        "    20 deny tcp any any eq 4445\n"
        "    30 permit ip any any\n")
    assert s.execute("show running-config | section access-list") == (
        "ip access-list extended IRM-X-IN\n"
        " 10 permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22\n"
        " 20 deny tcp any any eq 4445\n"
        " 30 permit ip any any\n")
    assert s.execute("show running-config | include ^interface|ip access-group") == (
        f"interface {WAN}\ninterface {LAN}\n ip access-group IRM-X-IN out\n")
    assert len(seen) == 4 and seen[-1].interfaces[LAN].acl_out == "IRM-X-IN"
    # the no forms: one entry by number, the binding, the whole list
    _run(s, "configure terminal", "ip access-list extended IRM-X-IN", "no 20")
    assert [e.seq for e in device.config.acls["IRM-X-IN"]] == [10, 30]
    assert s.execute("10 permit ip any any") == "% Duplicate sequence number\n"
    _run(s, "exit", f"interface {LAN}", "no ip access-group IRM-X-IN out", "exit",
         "no ip access-list extended IRM-X-IN", "end")
    assert device.config.acls == {} and device.config.interfaces[LAN].acl_out == ""
    assert "access" not in s.execute("show running-config")


def test_the_revert_timer_restores_the_configuration_unless_confirmed() -> None:
    clock = Clock()
    device, seen = _device(clock)
    s = device.session()
    before = device.config.running()
    _run(s, "enable")
    assert s.execute("show archive config rollback timer") == NO_PENDING + "\n"
    _run(s, "configure terminal revert timer 2", "ip access-list extended IRM-X-IN", "deny ip any any", "end")
    assert "Timer value: 2 min" in s.execute("show archive config rollback timer")
    clock.now += 119
    assert "IRM-X-IN" in s.execute("show access-lists")
    clock.now += 2  # past two minutes: the device restores what it had when the timer was armed
    assert s.execute("show access-lists") == ""
    assert device.config.running() == before and device.reverted == 1 and seen[-1].acls == {}
    assert s.execute("show archive config rollback timer") == NO_PENDING + "\n"
    # a confirmation after the rollback confirms nothing, and says so
    assert s.execute("configure confirm") == NO_PENDING + "\n"
    # confirmed in time: kept
    _run(s, "configure terminal revert timer 1", "ip access-list extended IRM-X-IN", "deny ip any any", "end",
         "configure confirm")
    clock.now += 600
    assert "IRM-X-IN" in s.execute("show access-lists") and device.reverted == 1


def test_a_revert_timer_needs_the_archive_and_no_pending_change() -> None:
    device, _ = _device(archive=False)
    s = device.session()
    _run(s, "enable")
    assert s.execute("show archive") == "Archive feature not enabled\n"
    assert s.execute("configure terminal revert timer 1") == "Archive feature not enabled\n"
    assert s.prompt() == "gw-ios#"
    _run(s, "configure terminal", "archive", "path flash:archive", "end")
    assert s.execute("configure terminal revert timer 1").startswith("Enter configuration")
    _run(s, "end")
    assert s.execute("configure terminal revert timer 1").startswith("% Rollback Confirmed Change")
    assert s.execute("configure revert now") == "Rollback Done\n" and device.revert_at is None


@pytest.mark.parametrize(("entry", "nft"), [
    ("permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22",
     "meta nfproto ipv4 ip saddr 198.18.0.2 ip daddr 198.18.48.0/24 meta l4proto tcp tcp dport 22 counter return"),
    ("permit tcp any eq 22 host 198.18.0.2 established",
     "meta nfproto ipv4 ip daddr 198.18.0.2 meta l4proto tcp tcp sport 22 tcp flags & (ack | rst) != 0 counter return"),
    ("deny tcp any any eq 445 4445", "meta nfproto ipv4 meta l4proto tcp tcp dport { 445, 4445 } counter drop"),
    ("permit udp 198.18.48.0 0.0.255.0 any range 1000 2000",
     "meta nfproto ipv4 ip saddr & 255.255.0.255 == 198.18.0.0 meta l4proto udp udp dport 1000-2000 counter return"),
    ("deny tcp any gt 1023 any lt www log",
     "meta nfproto ipv4 meta l4proto tcp tcp sport > 1023 tcp dport < 80 counter drop"),
    ("deny ip any any", "meta nfproto ipv4 counter drop"),
    ("remark irm: why", ""),
])
def test_each_entry_becomes_the_nft_rule_that_matches_the_same_packets(entry: str, nft: str) -> None:
    assert parse_ace(entry.split()) == entry  # what the CLI keeps is what is translated
    assert ios_enforce.rule(entry) == nft


def test_bound_lists_filter_their_direction_and_end_in_the_implicit_deny() -> None:
    device, _ = _device()
    s = device.session()
    _run(s, "enable", "configure terminal", "ip access-list extended IRM-IN", "deny tcp any any eq 4445",
         "permit ip any any", "exit", "ip access-list extended IRM-OUT", "permit tcp any any eq 22", "exit",
         f"interface {LAN}", "ip access-group IRM-IN in", "exit", f"interface {WAN}", "ip access-group IRM-OUT out",
         "ip access-group UNDEFINED in", "end")
    text = ios_enforce.ruleset(device.config, {LAN: "lan0", WAN: "wan0"})
    chains = {c.split("{")[0].strip(): c for c in text.split("chain ")[1:]}
    tail = [line.strip() for line in chains["acl_IRM-IN"].rstrip().splitlines()[-3:]]
    # each entry counts what it matches, named by its list and sequence; the implicit deny after the last
    assert tail == ['meta nfproto ipv4 counter return comment "IRM-IN 20"', "drop", "}"]
    assert 'iifname "lan0" jump acl_IRM-IN' in chains["input"]
    assert 'iifname "lan0" jump acl_IRM-IN' in chains["forward"]
    assert 'oifname "wan0" jump acl_IRM-OUT' in chains["forward"] and "IRM-OUT" not in chains["input"]
    assert "UNDEFINED" not in text  # bound but not defined: filters nothing, as on IOS
    assert ios_enforce.ruleset(device.config, {}).count("jump") == 0  # an interface the lab lacks


# -- irm's IOS renderer, applied to the emulated device ------------------------------------------------

irm_ios_render = module_util("irm_ios_render")


def _gateway_policy() -> dict[str, Any]:
    from orchestrator.core.incident import Vector
    from orchestrator.core.inventory.load import load_inventory
    from orchestrator.core.posture import AreaState, policies
    from tests.conftest import LAB_INVENTORY

    inv = load_inventory(LAB_INVENTORY)
    state = {"subsidiary-x": AreaState(posture="isolated", mobile_blocked=True)}
    policy: dict[str, Any] = policies(inv, [Vector(protocol="tcp", port=4445)], state)["gw-x"].model_dump(mode="json")
    return policy


def test_a_gateway_policy_renders_as_one_list_in_the_policys_order() -> None:
    aces = irm_ios_render.render("gw-x", _gateway_policy())
    assert aces[-1] == "permit ip any any"  # the policy's default accept
    assert "deny ip 198.18.40.0 0.0.0.255 any" in aces  # the mobile segment blocked, both ways
    assert "deny ip any 198.18.40.0 0.0.0.255" in aces
    assert any(a.startswith("permit tcp host 198.18.0.2 ") and a.endswith(" eq 22") for a in aces)  # management
    assert "permit tcp any any established" in aces  # stateless: TCP replies only
    for ace in aces:  # every entry is what the device keeps and prints back, word for word
        assert parse_ace(ace.split()) == ace


def _live(device: Device) -> dict[str, Any]:
    """What plan() reads: the device's lists (entry texts) and bindings by direction."""
    return {"live_acls": {n: [e.text for e in es] for n, es in device.config.acls.items()},
            "live_bindings": {i.name: {d: b for d, b in (("in", i.acl_in), ("out", i.acl_out)) if b}
                              for i in device.config.interfaces.values()}}


def _steps(s: Session, plan: dict[str, Any]) -> list[str]:
    """The plan's lines as irm_ios_acl sends them: one configuration session, from what the device holds."""
    live = {n: [(e.seq, e.text) for e in es] for n, es in s.device.config.acls.items()}
    lines: list[str] = irm_ios_render.cli_lines(plan, live, _live(s.device)["live_bindings"])
    out = _run(s, "configure terminal", *lines, "end")
    assert not [o for o in out[1:] if o.strip()], out  # the device refused nothing
    return lines


def test_the_plan_puts_the_list_in_place_make_before_break_and_never_touches_the_devices_own() -> None:
    device, seen = _device()
    s = device.session()
    _run(s, "enable", "configure terminal", "ip access-list extended OPS-KEEP", "permit ip any any", "exit",
         f"interface {LAN}", "ip access-group OPS-KEEP out", "end")
    policy = _gateway_policy()
    first = irm_ios_render.plan("gw-x", policy, interfaces=[WAN, LAN],
                                **_live(device))
    aces = irm_ios_render.render("gw-x", policy)
    digest = hashlib.sha1("\n".join(aces).encode()).hexdigest()[:8].upper()
    assert first["arm"] == "acls" and first["name"] == f"IRM-GW-X-{digest}" and first["delete"] == []
    _steps(s, first)
    name = first["name"]
    assert [e.text for e in device.config.acls[name]] == irm_ios_render.render("gw-x", policy)
    assert device.config.interfaces[WAN].acl_in == name == device.config.interfaces[LAN].acl_in
    assert device.config.interfaces[LAN].acl_out == "OPS-KEEP"
    # the same again: nothing to do
    again = irm_ios_render.plan("gw-x", policy, interfaces=[WAN, LAN],
                                **_live(device))
    assert not again["changes"] and again["arm"] == ""
    # a new label over the same entries (the mobile stage of an area without mobile segments): nothing to do
    relabelled = {**policy, "label": "isolated; mobile blocked"}
    assert not irm_ios_render.plan("gw-x", relabelled, interfaces=[WAN, LAN], **_live(device))["changes"]
    # a list of that name whose entries someone changed is repaired entry by entry, never deleted while bound
    _run(s, "configure terminal", f"ip access-list extended {name}", "no 10", "no 20", "20 deny ip any any", "end")
    repair = irm_ios_render.plan("gw-x", policy, interfaces=[WAN, LAN], **_live(device))
    assert repair["arm"] == "acls"
    assert _steps(s, repair) == [f"ip access-list extended {name}", "no 20", f"10 {aces[0]}", f"20 {aces[1]}", "exit"]
    assert [e.text for e in device.config.acls[name]] == aces
    # a new policy: the new list first, bound, and only then the old one deleted
    policy["forward"]["rules"] = policy["forward"]["rules"][1:]
    second = irm_ios_render.plan("gw-x", policy, interfaces=[WAN, LAN],
                                 **_live(device))
    assert second["delete"] == [{"afi": "ipv4", "acls": [{"name": name}]}]
    _steps(s, second)
    assert sorted(device.config.acls) == sorted([second["name"], "OPS-KEEP"])  # the device's own list untouched
    assert second["name"] != name
    # every intermediate configuration the device went through had each interface bound to a whole list
    for config in seen:
        for iface in config.interfaces.values():
            assert not iface.acl_in or iface.acl_in in config.acls
    # connected again: unbound, irm's lists gone, the device's own list and binding kept
    last = irm_ios_render.plan("gw-x", {"label": "connected"}, interfaces=[WAN, LAN],
                               **_live(device))
    assert last["arm"] == "bindings" and last["acls"] == []
    _steps(s, last)
    assert list(device.config.acls) == ["OPS-KEEP"] and not device.config.interfaces[WAN].acl_in
    assert device.config.interfaces[LAN].acl_out == "OPS-KEEP" and not device.config.interfaces[LAN].acl_in


def test_what_the_ios_renderer_refuses() -> None:
    with pytest.raises(irm_ios_render.IosPolicyError, match="interface GigabitEthernet0/1 has OPS-KEEP bound in"):
        irm_ios_render.plan("gw-x", {"forward": {"rules": [], "default": "drop"}},
                            interfaces=[WAN, LAN],
                            live_acls={"OPS-KEEP": []}, live_bindings={LAN: {"in": "OPS-KEEP"}})
    with pytest.raises(irm_ios_render.IosPolicyError, match="input: an IOS boundary filters routed traffic only"):
        irm_ios_render.render("gw-x", {"input": {"default": "drop", "rules": []}})
    with pytest.raises(irm_ios_render.IosPolicyError, match=r"forward.rules\[0\].src: '198.18.0.0/33'"):
        irm_ios_render.render("gw-x", {"forward": {"rules": [{"action": "drop", "src": ["198.18.0.0/33"]}]}})
    assert irm_ios_render.render("gw-x", {"label": "connected"}) == []
    # a drop default with no rule is one explicit deny: IOS reads an empty list as "permit everything"
    assert irm_ios_render.render("gw-x", {"forward": {"rules": [], "default": "drop"}}) == ["deny ip any any"]


def test_the_readback_parses_what_the_device_prints_two_ways_that_agree() -> None:
    from orchestrator.core import ios_readback

    device, _ = _device()
    s = device.session()
    _run(s, "enable", "configure terminal", "ip access-list extended IRM-GW-X-0123ABCD",
         "10 permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22", "20 permit tcp any any established",
         "30 permit ip any any", "exit", f"interface {LAN}", "ip access-group IRM-GW-X-0123ABCD in", "end")
    text = s.execute("show access-lists")
    acls = ios_readback.parse_access_lists(text)
    assert acls == {"IRM-GW-X-0123ABCD": [(10, "permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22"),
                                          (20, "permit tcp any any established"), (30, "permit ip any any")]}
    assert ios_readback.structured(text) == {("IRM-GW-X-0123ABCD", n) for n in (10, 20, 30)}
    bindings = ios_readback.parse_bindings(s.execute("show running-config | include ^interface|ip access-group"))
    assert bindings == {WAN: {}, LAN: {"in": "IRM-GW-X-0123ABCD"}}


def test_a_sub_mode_hands_a_global_command_to_configuration_mode() -> None:
    device, _ = _device(Clock())
    s = device.session()
    _run(s, "enable", "configure terminal", f"interface {WAN}")
    assert s.prompt() == "gw-ios(config-if)#"
    # as IOS does: the next interface straight away, and a global command from an access list's mode
    _run(s, f"interface {LAN}", "ip access-group OPS in")
    assert s.prompt() == "gw-ios(config-if)#" and device.config.interfaces[LAN].acl_in == "OPS"
    _run(s, "ip access-list extended IRM-X-IN", "deny ip any any", "no ip access-list extended IRM-X-IN")
    assert s.prompt() == "gw-ios(config)#" and "IRM-X-IN" not in device.config.acls
    # a line no mode takes keeps the sub-mode's own error
    _run(s, "interface GigabitEthernet0/0")
    assert "% Invalid input detected at '^' marker." in s.execute("frobnicate")
    assert s.prompt() == "gw-ios(config-if)#"


def test_show_ip_interface_names_the_bound_lists_as_the_template_reads_them() -> None:
    from orchestrator.core import ios_readback

    device, _ = _device()
    s = device.session()
    _run(s, "enable", "configure terminal", "ip access-list extended IRM-X", "permit ip any any", "exit",
         f"interface {LAN}", "ip access-group IRM-X in", "ip access-group OPS out", "end")
    want = {WAN: {}, LAN: {"in": "IRM-X", "out": "OPS"}}
    # the two readings irm's read-back compares: ntc-templates' TextFSM template and the running-config
    assert ios_readback.structured_bindings(s.execute("show ip interface")) == want
    assert ios_readback.parse_bindings(s.execute("show running-config | include ^interface|ip access-group")) == want
    assert s.execute(f"show ip interface {WAN}").startswith(f"{WAN} is up, line protocol is up\n"
                                                           "  Internet address is 198.18.0.22/30\n")
    assert "% Invalid input detected" in s.execute("show ip interface Tunnel9")
    # an interface without an address: IOS shows no list there (its IP processing is disabled)
    _run(s, "configure terminal", f"interface {WAN}", "ip access-group IRM-X in", "end")
    device.config.interfaces[WAN].address = ""
    assert ios_readback.structured_bindings(s.execute("show ip interface")) == {LAN: want[LAN]}


def test_ios_prints_well_known_ports_by_name_and_irm_reads_them_as_numbers() -> None:
    from orchestrator.core import ios_readback

    device, _ = _device()
    s = device.session()
    name = "IRM-GW-X-0123ABCD"
    _run(s, "enable", "configure terminal", f"ip access-list extended {name}", "10 permit tcp any any eq 80",
         "20 permit udp any eq 53 any", "30 permit tcp any any eq 22", "40 permit tcp any range 21 telnet any", "end")
    text = s.execute("show access-lists")
    for shown in ("10 permit tcp any any eq www", "20 permit udp any eq domain any", "30 permit tcp any any eq 22",
                  "40 permit tcp any range ftp telnet any"):
        assert shown in text
    live = ios_readback.IosLive(acls=ios_readback.parse_access_lists(text))
    aces = ["permit tcp any any eq 80", "permit udp any eq 53 any", "permit tcp any any eq 22",
            "permit tcp any range 21 23 any"]
    assert ios_readback.compare(live, name=name, aces=aces, interfaces=[], owned=lambda n: n == name) == []
    # the resource module's facts carry the name too: the plan reads the entry as irm wrote it
    gathered = [{"afi": "ipv4", "acls": [{"name": "L", "aces": [
        {"sequence": 10, "grant": "permit", "protocol": "tcp", "source": {"any": True},
         "destination": {"any": True, "port_protocol": {"eq": "www"}}}]}]}]
    assert irm_ios_render.from_gathered(gathered, [])[0] == {"L": ["permit tcp any any eq 80"]}
    # and the namespace's kernel still gets the number
    assert "80" in ios_enforce.rule("permit tcp any any eq www")


def test_show_arp_lists_the_device_and_its_neighbours_as_ios_does() -> None:
    from orchestrator.preparation.drift import parse_show_arp

    device, _ = _device()
    device.neighbours = lambda: [("198.18.48.11", "5e:02:66:aa:70:bf", LAN), ("198.18.0.21", "02:00:00:00:00:01", WAN)]
    s = device.session()
    _run(s, "enable")
    text = s.execute("show arp")
    assert text.splitlines()[0] == "Protocol  Address          Age (min)  Hardware Addr   Type   Interface"
    assert f"Internet  198.18.48.11            0   5e02.66aa.70bf  ARPA   {LAN}" in text
    assert parse_show_arp(text) == ["198.18.0.21", "198.18.48.11"]  # its own addresses (age -) left out
    assert s.execute("show ip arp") == text


def test_hit_counts_print_as_ios_and_read_back_as_the_sensor_rules_counts() -> None:
    from orchestrator.core import ios_readback
    from orchestrator.core.posture import SENSOR

    policy = _gateway_policy()
    aces = irm_ios_render.render("gw-x", policy)
    name = irm_ios_render.acl_name("gw-x", aces)
    sensors = [r for r in policy["forward"]["rules"] if r["comment"].startswith(SENSOR)]
    assert sensors, "an isolated area's gateway carries a sensor per sub-area"
    counted: dict[tuple[str, int], int] = {}
    device, _ = _device()
    device.hits = lambda: counted
    s = device.session()
    _run(s, "enable", "configure terminal", f"ip access-list extended {name}",
         *[f"{10 * (i + 1)} {a}" for i, a in enumerate(aces)], "end")
    # the kernel's counters, as the lab's server reads them: one packet on the first sensor's entry, 7 on
    # the last entry of the second; nothing on any other
    first = irm_ios_render.entries(sensors[0], "s0")
    second = irm_ios_render.entries(sensors[1], "s1")
    counted |= {(name, 10 * (aces.index(first[0]) + 1)): 1, (name, 10 * (aces.index(second[-1]) + 1)): 7}
    shown = s.execute(f"show access-lists {name}")
    assert f"{aces.index(first[0]) * 10 + 10} {first[0]} (1 match)" in shown  # IOS: "match", one
    assert f"{second[-1]} (7 matches)" in shown
    assert shown.count("match") == 2  # an entry that matched nothing prints no count
    live = ios_readback.IosLive(acls=ios_readback.parse_access_lists(shown),
                                matches=ios_readback.parse_matches(shown))
    assert [t for _, t in live.acls[name]] == aces  # the counts are not part of an entry's text
    got = ios_readback.counters(live, name, policy["forward"]["rules"])
    assert got[sensors[0]["comment"]] == 1 and got[sensors[1]["comment"]] == 7
    assert sum(got.values()) == 8
    assert ios_readback.counters(live, "IRM-OTHER", policy["forward"]["rules"]) == dict.fromkeys(got, 0)


def test_the_nft_counters_of_the_emulated_lists_are_read_per_entry() -> None:
    listing = {"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "ios"}},
                            {"rule": {"chain": "acl_L", "comment": "L 10", "expr": [
                                {"match": {}}, {"counter": {"packets": 3, "bytes": 180}}, {"drop": None}]}},
                            {"rule": {"chain": "acl_L", "comment": "L 20", "expr": [{"drop": None}]}},
                            {"rule": {"chain": "input", "expr": [{"counter": {"packets": 9, "bytes": 1}}]}}]}
    import json

    assert ios_enforce.hits(json.dumps(listing)) == {("L", 10): 3}
    assert ios_enforce.hits("not json") == {}
