"""The SIGUSR1 data dump and the SIGRTMIN+2 JSON dump against keepalived 2.2.7's own files.

tests/unit/data/keepalived-2.2.7/ holds what Debian's keepalived wrote for r1.conf (priority
150, every instance MASTER but one on a down interface and one held in FAULT by a failing
weight-0 script) and r2.conf (priority 100, BACKUP to r1), captured by `capture.py` there. The
same configs are loaded here, vrrpd's engine is driven to the same states with r1's adverts and
the same link addresses, and the dumps are compared line by line. Only time stamps are masked;
each line keepalived writes that vrrpd deliberately does not (or cannot) is listed below with
its reason, so a new difference fails the test.
"""

import json
import re
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from vrrpd.config.loader import load_config
from vrrpd.core.actions import State
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState
from vrrpd.io.files import FileSource
from vrrpd.proto.advert import Advert, Datagram
from vrrpd.proto.constants import VRRP_GROUP4, VRRP_GROUP6
from vrrpd.proto.packet import encode
from vrrpd.runtime.datadump import format_data
from vrrpd.runtime.jsondump import format_json

DATA = Path(__file__).parent / "data" / "keepalived-2.2.7"
LINKS = json.loads((DATA / "links.json").read_text())
WALL = 1795550000.0
SCRIPTS = {"chk_ok": {"status": "GOOD"}, "chk_bad": {"status": "BAD"}}

# Lines keepalived writes that vrrpd leaves out, with the reason.
KEEPALIVED_ONLY = [
    re.compile(r"^   fd_in \d+, fd_out \d+$"),  # socket fds: no meaning outside keepalived
]
TIME = re.compile(
    r"= \d+\.\d{6} \([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{6} \d{4}\)"
)


def engine_for(router: str) -> tuple[Engine, float]:
    """r1's or r2's config in an engine brought to the states keepalived was in."""
    config, _ = load_config(str(DATA / f"{router}.conf"), FileSource())
    eng = Engine(config)
    me = LINKS[router]
    eng.on_link(LinkState("eth0", 2, True, IPv4Address(me["addr4"]), IPv6Address(me["addr6"])), 0)
    eng.on_link(LinkState("dummy0", 4, True), 0)
    eng.on_link(LinkState("dummy1", 6, False), 0)
    # chk_bad (weight 0) has failed: keepalived holds VI_S in FAULT (the trackers service's job).
    eng.set_fault("VI_S", "script:chk_bad", "chk_bad failed", 0)
    eng.start(0.0)
    now = 0.0
    while now < 8.0:
        now = round(now + 0.05, 2)
        if router == "r2":
            for dgram in r1_adverts():
                eng.receive_datagram(dgram, now)
        eng.on_timer(now)
    return eng, now


def r1_adverts() -> list[Datagram]:
    """What r1 (priority 150, MASTER) sends for each of its instances."""
    r1, r2 = LINKS["r1"], LINKS["r2"]
    v4, v6, peer = ip_address(r1["addr4"]), ip_address(r1["addr6"]), ip_address(r2["addr4"])
    adverts = [
        (Advert(3, 51, 150, 50, (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101"))), v4),
        (Advert(3, 52, 150, 100, (IPv6Address("2001:db8::100"),)), v6),
        (Advert(2, 53, 150, 1, (IPv4Address("198.51.100.10"),), 1, b"s3cret"), v4),
        (Advert(2, 56, 150, 1, (IPv4Address("198.51.100.20"),)), v4),
    ]
    out = []
    for advert, src in adverts:
        dst = peer if advert.vrid == 53 else (VRRP_GROUP6 if src.version == 6 else VRRP_GROUP4)
        out.append(Datagram(encode(advert, src, dst), src, dst, 2, 255))
    return out


def section(text: str, title: str) -> list[str]:
    """The lines of one `------< title >------` section."""
    lines = text.splitlines()
    start = lines.index(f"------< {title} >------") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("------<")), len(lines))
    return lines[start:end]


def comparable(lines: list[str], *, keepalived: bool) -> list[str]:
    out = [TIME.sub("= <time>", line) for line in lines]
    if keepalived:
        out = [line for line in out if not any(p.match(line) for p in KEEPALIVED_ONLY)]
    return out


@pytest.mark.parametrize("router", ["r1", "r2"])
def test_topology_blocks_match_keepalived_line_for_line(router):
    eng, now = engine_for(router)
    ours = format_data(eng.config, eng, now, WALL, SCRIPTS)
    theirs = (DATA / f"{router}.data").read_text()
    assert comparable(section(ours, "VRRP Topology"), keepalived=False) == comparable(
        section(theirs, "VRRP Topology"), keepalived=True
    )


def test_states_are_the_ones_keepalived_was_in():
    r1, _ = engine_for("r1")
    r2, _ = engine_for("r2")
    assert {n: i.state for n, i in r1.instances.items()} == {
        "VI_1": State.MASTER, "VI_6": State.MASTER, "VI_2": State.MASTER, "VI_N": State.MASTER,
        "VI_F": State.FAULT, "VI_S": State.FAULT,
    }  # fmt: skip
    assert {i.state for n, i in r2.instances.items() if n not in ("VI_F", "VI_S")} == {State.BACKUP}


@pytest.mark.parametrize("router", ["r1", "r2"])
def test_global_lines_are_keepalived_lines_in_keepalived_order(router):
    eng, now = engine_for(router)
    ours = section(format_data(eng.config, eng, now, WALL), "Global definitions")
    theirs = section((DATA / f"{router}.data").read_text(), "Global definitions")
    positions = [theirs.index(line) for line in ours]  # ValueError: a line keepalived lacks
    assert positions == sorted(positions)
    assert len(ours) >= 20


def test_sync_groups_and_scripts_match_keepalived():
    eng, now = engine_for("r1")
    ours = format_data(eng.config, eng, now, WALL, SCRIPTS)
    theirs = (DATA / "r1.data").read_text()
    assert section(ours, "VRRP Sync groups") == section(theirs, "VRRP Sync groups")
    # keepalived prints `Timeout = 0 sec` for an unset timeout; the model stores the effective
    # timeout (= interval, which is what both daemons then use).
    expected = [
        "   Timeout = 1 sec" if line == "   Timeout = 0 sec" else line
        for line in section(theirs, "VRRP Scripts")
    ]
    assert section(ours, "VRRP Scripts") == expected


def test_exporters_read_the_topology_the_way_they_read_keepalived():
    """mehdy/keepalived-exporter's text parser: ` VRRP Instance = X` starts a block, `KEY = V`
    lines inside it; State, Interface and Virtual Router ID are what it exports."""
    eng, now = engine_for("r2")
    parsed: dict[str, dict[str, str]] = {}
    current = None
    for line in format_data(eng.config, eng, now, WALL).splitlines():
        if line.startswith(" VRRP Instance = "):
            current = parsed.setdefault(line.split("=", 1)[1].strip(), {})
        elif line.startswith("   ") and current is not None and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            current.setdefault(key, value)
        elif not line.startswith("   "):
            current = None
    assert parsed["VI_1"]["State"] == "BACKUP"
    assert parsed["VI_1"]["Interface"] == "eth0"
    assert parsed["VI_2"]["Virtual Router ID"] == "53"
    assert parsed["VI_F"]["State"] == "FAULT"


def mask_json(text: str) -> str:
    """Time stamps and counters differ between any two runs."""
    text = re.sub(r'"last_transition":\d+\.\d{6}', '"last_transition":<t>', text)
    return re.sub(r'"stats":\{[^}]*\}', '"stats":<counters>', text)


@pytest.mark.parametrize("router", ["r1", "r2"])
def test_json_dump_matches_keepalived_byte_for_byte(router):
    eng, now = engine_for(router)
    ours = format_json(eng.config, eng, now, WALL)
    theirs = (DATA / f"{router}.json").read_text()
    assert mask_json(ours) == mask_json(theirs)
    for mine, kept in zip(json.loads(ours), json.loads(theirs), strict=True):
        assert list(mine["stats"]) == list(kept["stats"])
        assert mine["data"]["master_priority"] == kept["data"]["master_priority"]


def test_json_numbers_and_escapes_are_written_as_keepalived_writes_them():
    eng, now = engine_for("r1")
    text = format_json(eng.config, eng, now, WALL)
    assert text.endswith("}}]\n") and " " not in text.replace("scope global", "")[:200]
    assert '"adver_int":0.5,' in text and '"master_adver_int":1,' in text
    assert re.search(r'"last_transition":\d{10}\.\d{6},', text)
    assert '"192.0.2.100\\/24 dev eth0 scope global set"' in text
