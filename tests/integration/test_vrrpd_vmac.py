"""`use_vmac` with the real daemon: the VIP lives on a macvlan carrying the virtual router MAC.

keepalived.md 4.9: the VMAC `vrrp.51` (MAC 00:00:5e:00:01:33, IPv6 ...:02:33) carries the VIPs
and, unless `vmac_xmit_base`, the adverts too; so after a failover the client's neighbour entry
for the VIP does not change at all, only the switch port behind the MAC does. We check the MACs
on the wire (bridge-port captures), the client's neighbour entry, pings after each takeover, and
that a clean stop removes the VMAC and restores the parent's sysctls.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import wait_until
from vrrplab.capture import Capture
from vrrplab.netns import run
from vrrplab.procs import RouterProcess

VMAC4, VMAC6 = "00:00:5e:00:01:33", "00:00:5e:00:02:33"
CASES = {"ipv4": (4, False), "ipv4-xmit-base": (4, True), "ipv6": (6, False)}


def conf(node, priority: int, family: int, xmit_base: bool) -> str:
    vip = "2001:db8::100/64" if family == 6 else "192.0.2.100/24"
    extra = "    vmac_xmit_base\n" if xmit_base else ""
    return (
        f"global_defs {{\n    router_id {node.name}\n}}\n"
        f"vrrp_instance VI_1 {{\n    state BACKUP\n    interface {node.ifname}\n"
        f"    use_vmac\n{extra}    virtual_router_id 51\n    priority {priority}\n"
        f"    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
    )


def vmac_addrs(node, dev: str = "vrrp.51") -> list[str] | None:
    """Addresses on the node's VMAC, or None when there is no VMAC."""
    proc = subprocess.run(["ip", "-n", node.ns, "-j", "addr", "show", "dev", dev],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        return None
    return [a["local"] for link in json.loads(proc.stdout) for a in link.get("addr_info", [])]


def holder(lab, vip: str) -> list[str]:
    return [r.name for r in lab.routers if vip in (vmac_addrs(r) or [])]


def client_reaches(lab, vip: str) -> bool:
    ping = "ping6" if ":" in vip else "ping"
    argv = ["ip", "netns", "exec", lab.client.ns, ping, "-c", "1", "-W", "1", vip]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def answering_mac(lab, vip: str) -> str:
    """The MAC that answers the client's ARP request (IPv6: neighbour solicitation) for `vip`.

    Not the client's neighbour cache: a reply routed out of the parent makes the kernel ARP for
    the client from the parent with the VIP as sender, which rewrites that entry (keepalived
    has the same kernel behaviour); an explicit request shows who answers for the VIP.
    """
    ns = ["ip", "netns", "exec", lab.client.ns]
    if ":" in vip:
        out = run([*ns, "ndisc6", "-1", "-r", "3", "-w", "1000", vip, "eth0"], check=False)
        found = [ln.split()[-1] for ln in out.splitlines() if "Target link-layer" in ln]
    else:
        out = run([*ns, "arping", "-c", "1", "-w", "2", "-I", "eth0", vip], check=False)
        found = [ln.split()[3] for ln in out.splitlines() if " from " in ln]
    return found[0].lower() if found else ""


def sysctl(node, key: str) -> str:
    return run(["ip", "netns", "exec", node.ns, "sysctl", "-n", key]).strip()


@pytest.mark.parametrize("case", list(CASES))
def test_use_vmac_failover_keeps_the_virtual_mac(lab, case: str) -> None:
    family, xmit_base = CASES[case]
    vip, mac = ("2001:db8::100", VMAC6) if family == 6 else ("192.0.2.100", VMAC4)
    r1, r2 = lab.routers
    before = {k: sysctl(r2, f"net.ipv4.conf.eth0.{k}") for k in ("arp_ignore", "arp_filter")}
    p1 = RouterProcess(r1, "vrrpd", conf(r1, 150, family, xmit_base), lab.workdir)
    p2 = RouterProcess(r2, "vrrpd", conf(r2, 100, family, xmit_base), lab.workdir)
    try:
        with Capture(lab.bridge_ns, r1.port) as cap:
            for p in (p1, p2):
                p.start()
                p.wait_started()
            wait_until(lambda: holder(lab, vip) == ["r1"], 10, "r1's VMAC to hold the VIP")
            wait_until(lambda: client_reaches(lab, vip), 5, "the client to reach the VIP on r1")
            assert answering_mac(lab, vip) == mac
            wait_until(lambda: vmac_addrs(r2) is not None, 5, "the BACKUP to create its VMAC too")
            assert sysctl(r1, "net.ipv4.conf.vrrp/51.arp_ignore") == "1"
            wait_until(lambda: [e for e in cap.events() if e.kind == "advert"], 5, "r1 adverts")
            adverts = [e for e in cap.events() if e.kind == "advert"]
            want_src = r1.mac if xmit_base else mac
            assert {e.src_mac for e in adverts} == {want_src}
            if family == 4:
                assert {e.src for e in adverts} == {str(r1.addr4.ip)}  # the parent's address
            else:
                assert all(e.src.startswith("fe80:") for e in adverts)
            garps = [e for e in cap.events() if e.kind in ("arp", "na") and e.target == vip]
            assert garps and {e.src_mac for e in garps} == {mac}
        mark2 = p2.mark()
        p1.kill9()
        wait_until(lambda: "r2" in holder(lab, vip), 10, "r2's VMAC to take the VIP")
        assert p2.states(mark2) == ["MASTER"]
        wait_until(lambda: client_reaches(lab, vip), 5, "the client to reach the VIP on r2")
        assert answering_mac(lab, vip) == mac  # the same MAC: no neighbour update needed
        p2.sigterm()
        assert vmac_addrs(r2) is None, "a clean stop removes the VMAC"
        after = {k: sysctl(r2, f"net.ipv4.conf.eth0.{k}") for k in ("arp_ignore", "arp_filter")}
        assert after == before, "the parent's sysctls are restored"
        assert "Traceback" not in p1.output() + p2.output()
    finally:
        for p in (p1, p2):
            if p.running():
                p.sigterm()
