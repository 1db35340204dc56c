"""The real vrrpd daemon in namespaces, alone and with real keepalived in the same virtual router.

Each case starts r1 (priority 150) and r2 (priority 100) from the same keepalived.conf shape,
checks that r1 is elected and holds the VIP, kills r1 with SIGKILL, checks that r2 takes the VIP
and the client reaches it, restarts r1 and checks that it preempts back. Neither log may carry a
packet error or a traceback. Waits poll the kernel state with deadlines.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest
from conftest import wait_until
from vrrplab import keepalived_trixie
from vrrplab.capture import Capture
from vrrplab.procs import RouterProcess

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived missing")

BAD_LOG = ("Traceback", "nvalid", "dropped packet", "checksum", "mismatch")


@dataclass(frozen=True)
class Case:
    id: str
    master: str
    backup: str
    version: int = 3
    advert: str = "0.1"
    family: int = 4
    unicast: bool = False
    auth: bool = False
    glob: str = ""

    @property
    def vip(self) -> str:
        return "2001:db8::100/64" if self.family == 6 else "192.0.2.100/24"


CASES = [
    Case("vrrpd-v3", "vrrpd", "vrrpd"),
    Case("vrrpd-v3-ipv6", "vrrpd", "vrrpd", family=6),
    Case("vrrpd-v3-unicast", "vrrpd", "vrrpd", unicast=True),
    Case("vrrpd-v3-rfc9568-checksum", "vrrpd", "vrrpd", glob="v3_checksum_as_v2"),
    Case("vrrpd-master-keepalived-backup-v3", "vrrpd", "keepalived"),
    Case("keepalived-master-vrrpd-backup-v3", "keepalived", "vrrpd"),
    Case("vrrpd-master-keepalived-backup-v3-ipv6", "vrrpd", "keepalived", family=6),
    Case("keepalived-master-vrrpd-backup-v3-unicast", "keepalived", "vrrpd", unicast=True),
    Case("vrrpd-master-keepalived-backup-v2-pass", "vrrpd", "keepalived", 2, "1", auth=True),
    Case("keepalived-master-vrrpd-backup-v2", "keepalived", "vrrpd", 2, "1"),
]
# RFC 9568's checksum form against keepalived 2.3 (Debian 13, in a chroot): 2.2.7 lacks it.
TRIXIE = pytest.mark.skipif(
    not keepalived_trixie.available(),
    reason=keepalived_trixie.NOT_PREPARED,
)
CASES += [
    pytest.param(Case(name, m, b, glob="v3_checksum_as_v2"), marks=TRIXIE, id=name)
    for name, m, b in (
        ("keepalived23-master-vrrpd-backup-v3-rfc9568-checksum", "keepalived-trixie", "vrrpd"),
        ("vrrpd-master-keepalived23-backup-v3-rfc9568-checksum", "vrrpd", "keepalived-trixie"),
    )
]


def conf(case: Case, me, peer, priority: int) -> str:
    """keepalived.conf for one router; vrrpd and keepalived read it unchanged."""
    lines = [f"    {case.glob}"] if case.glob else []
    inst = []
    if case.unicast:
        inst += [
            f"    unicast_src_ip {me.addr4.ip}",
            f"    unicast_peer {{\n        {peer.addr4.ip}\n    }}",
        ]
    if case.auth:
        inst += ["    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }"]
    return "\n".join([
        "global_defs {", f"    router_id {me.name}", "    script_user root", *lines, "}",
        "vrrp_instance VI_1 {", "    state BACKUP", f"    interface {me.ifname}",
        "    virtual_router_id 51", f"    priority {priority}", f"    version {case.version}",
        f"    advert_int {case.advert}", *inst,
        f"    virtual_ipaddress {{\n        {case.vip}\n    }}", "}", "",
    ])  # fmt: skip


def ping(lab, vip: str) -> bool:
    argv = ["ip", "netns", "exec", lab.client.ns, "ping", "-c", "1", "-W", "1", vip]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def start(lab, case: Case) -> list[RouterProcess]:
    r1, r2 = lab.routers
    procs = [
        RouterProcess(r1, case.master, conf(case, r1, r2, 150), lab.workdir),
        RouterProcess(r2, case.backup, conf(case, r2, r1, 100), lab.workdir),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.wait_started()
    return procs


def last_state(proc: RouterProcess) -> str:
    states = [ln.split("Entering ")[1].split()[0] for ln in proc.output().splitlines()
              if "Entering " in ln]  # fmt: skip
    return states[-1] if states else ""


def assert_clean_logs(procs: list[RouterProcess]) -> None:
    for p in procs:
        out = p.output()
        bad = [line for line in out.splitlines() if any(m in line for m in BAD_LOG)]
        assert not bad, f"{p.node.name} ({p.impl}) logged: {bad[:3]}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id if isinstance(c, Case) else None)
def test_election_failover_and_preemption(lab, case: Case):
    vip = case.vip.split("/")[0]
    slow = 3 * float(case.advert) + 2  # a generous bound on one Master_Down_Interval
    procs = start(lab, case)
    try:
        wait_until(lambda: lab.owners(vip) == ["r1"], 2 * slow + 5, "r1 (150) to hold the VIP")
        # r2 may win the start-up race for a moment; what matters is where it settles.
        wait_until(lambda: last_state(procs[1]) == "BACKUP", 5, "r2 to settle in BACKUP")
        wait_until(lambda: ping(lab, vip), 5, "the client to reach the VIP on r1")

        procs[0].kill9()
        wait_until(lambda: "r2" in lab.owners(vip), slow + 5, "r2 to take the VIP")
        wait_until(lambda: ping(lab, vip), 5, "the client to reach the VIP on r2")

        procs[0].start()  # preemption: the higher priority router returns and takes over
        procs[0].wait_started()
        wait_until(lambda: lab.owners(vip) == ["r1"], 2 * slow + 5, "r1 to preempt back")
        assert_clean_logs(procs)
    finally:
        for p in procs:
            if p.running():
                p.sigterm()


def test_sigterm_master_sends_priority_zero_and_releases_the_vip(lab):
    case = Case("sigterm", "vrrpd", "vrrpd")
    procs = start(lab, case)
    r1, _ = lab.routers
    try:
        wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], 10, "r1 to hold the VIP")
        with Capture(lab.client.ns) as cap:
            procs[0].sigterm()
            wait_until(lambda: lab.owners("192.0.2.100") == ["r2"], 5, "r2 to take the VIP")

            def prio0() -> bool:
                return any(e.kind == "advert" and e.src_mac == r1.mac and e.priority == 0
                           for e in cap.events())  # fmt: skip

            wait_until(prio0, 5, "r1's priority-0 advert on the wire")
        assert "(VI_1) sent 0 priority" in procs[0].output()
        assert "(VI_1) removing VIPs." in procs[0].output()
    finally:
        for p in procs:
            if p.running():
                p.sigterm()


def test_link_down_puts_the_master_in_fault_and_the_backup_takes_over(lab):
    procs = start(lab, Case("linkdown", "vrrpd", "vrrpd"))
    r1, _ = lab.routers
    try:
        wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], 10, "r1 to hold the VIP")
        lab.link_down(r1)
        wait_until(lambda: "(VI_1) Entering FAULT STATE" in procs[0].output(), 5, "r1 FAULT")
        wait_until(lambda: lab.owners("192.0.2.100") == ["r2"], 5, "r2 alone to hold the VIP")
        lab.link_up(r1)
        wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], 10, "r1 back and preempting")
    finally:
        for p in procs:
            if p.running():
                p.sigterm()


CRAFT = """
from scapy.all import IP, Raw, send
from scapy.layers.vrrp import VRRPv3
import scapy.config
scapy.config.conf.verb = 0
good = dict(vrid=51, priority=200, ipcount=1, addrlist=["192.0.2.100"], adv=10)
pkts = [
    IP(dst="224.0.0.18", ttl=64) / VRRPv3(**good),                    # ip_ttl_err
    IP(dst="224.0.0.18", ttl=255, proto=112) / Raw(b"\\x31\\x33\\xc8"),  # packet_len_err
    IP(dst="224.0.0.18", ttl=255) / VRRPv3(type=2, **good),           # invalid_type_rcvd
    IP(dst="224.0.0.18", ttl=255) / VRRPv3(chksum=0x1234, **good),    # checksum
    IP(dst="224.0.0.18", ttl=255) / VRRPv3(vrid=99, priority=200, ipcount=1,
                                           addrlist=["192.0.2.100"], adv=10),  # unknown VRID
]
for p in pkts:
    send(p, iface="eth0")
"""


def test_crafted_bad_packets_are_dropped_and_counted(lab):
    """Priority 200 adverts that must all be dropped: had any been accepted, r2 (100) would
    have stayed BACKUP anyway, so the counters in the SIGUSR2 dump are what is asserted."""
    procs = start(lab, Case("badpackets", "vrrpd", "vrrpd"))
    try:
        wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], 10, "r1 to hold the VIP")
        wait_until(lambda: last_state(procs[1]) == "BACKUP", 5, "r2 to settle in BACKUP")
        argv = ["ip", "netns", "exec", lab.client.ns, sys.executable, "-c", CRAFT]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        stats = procs[1].pid_file.with_suffix(".stats")

        def counted() -> bool:
            subprocess.run(["kill", "-USR2", str(procs[1].pid)], check=True)
            text = stats.read_text() if stats.exists() else ""
            return all(f"{k}: 1" in text for k in ("TTL", "Length", "Invalid Type"))

        wait_until(counted, 10, "the three keepalived-named drops counted in the stats dump")
        assert procs[1].running() and procs[0].running()
        assert last_state(procs[1]) == "BACKUP"
        assert lab.owners("192.0.2.100") == ["r1"]
        log = procs[1].output()
        assert "Traceback" not in log
        assert "dropped packet from 192.0.2.2: checksum_err" in log
        assert "dropped packet from 192.0.2.2: unknown_vrid" in log
    finally:
        for p in procs:
            if p.running():
                p.sigterm()
