"""Bad runtime input (issue 4): a missing interface, a VIP that cannot be added, an interface
with no address to send from. Each such instance goes to FAULT with a log line naming the cause;
the healthy instance becomes MASTER; nothing crashes and no VIP stays on the host for an
instance that is not MASTER."""

from __future__ import annotations

from conftest import wait_until
from vrrplab.netns import run
from vrrplab.procs import RouterProcess

CONF = """
global_defs {
    router_id r1
}
vrrp_instance VI_OK {
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance VI_NOIF {
    interface nosuch0
    virtual_router_id 52
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.101/24
    }
}
vrrp_instance VI_BADVIP {
    interface eth0
    virtual_router_id 53
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.102/24
        192.0.2.103/24 dev nosuch1
    }
}
vrrp_instance VI_NOV6 {
    interface d6
    virtual_router_id 54
    version 3
    advert_int 0.1
    virtual_ipaddress {
        2001:db8::54/64
    }
}
"""


def addresses(ns: str) -> str:
    return run(["ip", "-n", ns, "-br", "addr"])


def test_faulty_instances_fault_with_their_cause_and_the_rest_carry_on(lab) -> None:
    r1 = lab.routers[0]
    # An interface that is up but has IPv6 disabled: no link-local to send IPv6 adverts from.
    run(["ip", "-n", r1.ns, "link", "add", "d6", "type", "veth", "peer", "name", "d6p"])
    run(["ip", "netns", "exec", r1.ns, "sysctl", "-q", "net.ipv6.conf.d6.disable_ipv6=1"])
    for dev in ("d6", "d6p"):
        run(["ip", "-n", r1.ns, "link", "set", dev, "up"])
    proc = RouterProcess(r1, "vrrpd", CONF, lab.workdir)
    proc.start()
    try:
        proc.wait_started()
        wait_until(lambda: "(VI_OK) Entering MASTER STATE" in proc.output(), 10, "VI_OK MASTER")
        wait_until(lambda: "(VI_BADVIP) Entering FAULT STATE" in proc.output(), 10, "BADVIP FAULT")
        out = proc.output()
        assert "(VI_NOIF) Entering FAULT STATE (init)" in out
        assert "(VI_NOIF) FAULT because" in out and "nosuch0" in out.split("(VI_NOIF) FAULT")[1]
        assert "(VI_NOV6) Entering FAULT STATE (init)" in out
        assert "(VI_NOV6) FAULT because" in out
        assert "cannot set VIPs" in out and "nosuch1" in out
        # Never announce an address we could not add.
        assert "gratuitous ARPs on eth0 for 192.0.2.102" not in out
        held = addresses(r1.ns)
        assert "192.0.2.100/24" in held
        assert "192.0.2.102" not in held and "192.0.2.101" not in held, held
        assert proc.running() and "Traceback" not in out
        # The daemon still answers signals: the stats dump lists every instance.
        stats = proc.dump_stats()
        assert "VRRP Instance: VI_OK" in stats and "VRRP Instance: VI_BADVIP" in stats
    finally:
        if proc.running():
            proc.sigterm()
    assert "192.0.2.100" not in addresses(r1.ns)
    assert "Traceback" not in proc.output()
