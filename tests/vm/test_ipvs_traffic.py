"""Client traffic through a VRRP pair of LVS directors, in DR and NAT mode (in the VM).

Two directors (r1 priority 150, r2 priority 100) run the real vrrpd with the same
keepalived.conf: a vrrp_instance holding the VIP(s) and a virtual_server whose two web servers
(r3, r4: busybox httpd answering their own name) are health-checked and programmed into IPVS on
both. A client fetches the VIP with curl and must get answers from both real servers through
r1's IPVS; then r1 is cut off the LAN (bridge side), r2 takes the VIP over, and the client must
again reach both real servers, now through r2's IPVS.

- DR: one subnet (192.0.2.0/24); the real servers hold the VIP on `lo` with arp_ignore=1 and
  arp_announce=2, so only the master director answers ARP for it; replies go straight back.
- NAT: the client is outside (198.51.100.0/24, VIP 198.51.100.100), the real servers inside
  with the inside VIP 192.0.2.1 as their default route, so replies return through the master.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from vm_guest import Listener, ipvsadm, vrrpd_argv
from vrrplab import Lab, wait_until
from vrrplab.netns import run, sysctl
from vrrplab.procs import RouterProcess

START_S = 120
FAILOVER_S = 30


@dataclass(frozen=True)
class Mode:
    method: str
    vip: str  # what the client connects to
    vips: tuple[str, ...]  # what VRRP holds


DR = Mode("DR", "192.0.2.100", ("192.0.2.100/24",))
NAT = Mode("NAT", "198.51.100.100", ("198.51.100.100/24", "192.0.2.1/24"))


def conf(mode: Mode, priority: int) -> str:
    vips = "".join(f"        {v} dev eth0\n" for v in mode.vips)
    servers = "".join(
        f"    real_server 192.0.2.{h} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n"
        "        }\n    }\n"
        for h in (13, 14)
    )
    return (
        "global_defs {\n    router_id director\n}\n"
        "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n"
        f"    priority {priority}\n    advert_int 1\n    virtual_ipaddress {{\n{vips}    }}\n}}\n"
        f"virtual_server {mode.vip} 80 {{\n    delay_loop 1\n    lvs_sched rr\n"
        f"    lvs_method {mode.method}\n    protocol TCP\n{servers}}}\n"
    )


def prepare(lab: Lab, mode: Mode) -> None:
    r1, r2, r3, r4 = lab.routers
    assert lab.client is not None
    for rs in (r3, r4):
        if mode is DR:
            run(["ip", "-n", rs.ns, "addr", "add", f"{mode.vip}/32", "dev", "lo"])
            for scope in ("all", "eth0"):
                sysctl(rs.ns, f"net.ipv4.conf.{scope}.arp_ignore", 1)
                sysctl(rs.ns, f"net.ipv4.conf.{scope}.arp_announce", 2)
        else:
            run(["ip", "-n", rs.ns, "route", "add", "default", "via", "192.0.2.1"])
    if mode is NAT:
        for director in (r1, r2):
            sysctl(director.ns, "net.ipv4.ip_forward", 1)
        run(["ip", "-n", lab.client.ns, "addr", "add", "198.51.100.2/24", "dev", "eth0"])


def fetch(lab: Lab, vip: str, count: int = 4) -> list[str]:
    """`count` HTTP GETs of the VIP from the client; each answer is a real server's name."""
    assert lab.client is not None
    argv = ["ip", "netns", "exec", lab.client.ns, "curl", "-s", "-m", "5", f"http://{vip}/"]
    out = []
    for _ in range(count):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        out.append(proc.stdout.strip() or f"curl rc {proc.returncode}")
    return out


def connections(ns: str, vip: str) -> int:
    """IPVS connections counted for the virtual service (the estimator lags about 2 s)."""
    for line in ipvsadm(ns, "-Ln", "--stats").splitlines():
        words = line.split()
        if len(words) > 2 and words[1] == f"{vip}:80":
            return int(words[2])
    return 0


def both_answer(lab: Lab, vip: str) -> bool:
    return set(fetch(lab, vip)) == {"r3", "r4"}


@pytest.mark.parametrize("mode", [DR, NAT], ids=["DR", "NAT"])
def test_client_reaches_real_servers_through_the_master_and_after_failover(
    mode: Mode, tmp_path: Path
) -> None:
    with Lab(routers=4, tag=f"lvs{mode.method.lower()}", workdir=tmp_path) as lab:
        r1, r2, r3, r4 = lab.routers
        prepare(lab, mode)
        web = [Listener(n.ns, n.name, tmp_path / "www") for n in (r3, r4)]
        for listener in web:
            listener.start()
        directors = [
            RouterProcess(d, "vrrpd", conf(mode, prio), tmp_path, argv=vrrpd_argv())
            for d, prio in ((r1, 150), (r2, 100))
        ]
        try:
            for proc in directors:
                proc.start()
            for proc in directors:
                proc.wait_started(START_S)
            held = mode.vips[0].split("/")[0]
            wait_until(lambda: lab.owners(held) == ["r1"], START_S, "r1 to hold the VIP")
            for d in (r1, r2):  # the table is programmed on both directors
                wait_until(lambda d=d: "192.0.2.14:80" in ipvsadm(d.ns, "-Ln"), START_S, "table")
            wait_until(lambda: both_answer(lab, mode.vip), FAILOVER_S, "r3 and r4 through r1")
            wait_until(lambda: connections(r1.ns, mode.vip) >= 2, 10, "r1's IPVS counters")
            lab.partition(r1)  # r1 is cut off: r2 must take the VIP and the traffic
            wait_until(lambda: "r2" in lab.owners(held), FAILOVER_S, "r2 to take the VIP")
            wait_until(lambda: both_answer(lab, mode.vip), FAILOVER_S, "r3 and r4 through r2")
            wait_until(lambda: connections(r2.ns, mode.vip) >= 2, 10, "r2's IPVS counters")
            for proc in directors:
                proc.sigterm(30)
                assert "Traceback" not in proc.output(), proc.output()
        finally:
            for proc in directors:
                if proc.running():
                    proc.kill9()
            for listener in web:
                listener.stop()
