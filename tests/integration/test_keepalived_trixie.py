"""keepalived 2.3 (Debian 13, in a chroot: netns-lab/vrrplab/keepalived_trixie.py) as a peer for
the RFC 9568 form of the VRRPv3 IPv4 checksum (keepalived `v3_checksum_as_v2`, 2.2.8+), which
Debian 12's keepalived 2.2.7 does not have.

keepalived with `v3_checksum_as_v2` accepts any VRRPv3 checksum on receive (reference notes,
vrrp.c), so a mixed router alone cannot show that vrrpd sends the right form: here vrrpd's
encoder must reproduce keepalived's advert byte for byte in that form, and not in the other.
The failover cases in both directions are in test_vrrpd_daemon.py.
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from conftest import wait_until
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.packet import raw
from vrrplab import keepalived_trixie
from vrrplab.capture import Capture
from vrrplab.procs import RouterProcess

from vrrpd.proto.packet import decode, encode

pytestmark = pytest.mark.skipif(
    not keepalived_trixie.available(),
    reason=keepalived_trixie.NOT_PREPARED,
)

CONF = """global_defs {{
    router_id r1
    v3_checksum_as_v2
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.1
    virtual_ipaddress {{
        192.0.2.100/24
        192.0.2.101/24
    }}
}}
"""


def test_keepalived_2_3_sends_the_rfc9568_checksum_vrrpd_encodes(lab):
    r1 = lab.routers[0]
    proc = RouterProcess(r1, "keepalived-trixie", CONF.format(), lab.workdir)
    with Capture(lab.client.ns) as cap:
        proc.start()
        try:
            proc.wait_started()

            def adverts() -> list[IP]:
                frames = [Ether(f) for _, f in cap.snapshot()]
                return [f[IP] for f in frames if IP in f and f[IP].proto == 112]

            sent = wait_until(adverts, 10, "an advert from keepalived 2.3")
        finally:
            proc.sigterm()
    assert "Keepalived v2.3" in proc.output(), proc.output()[:500]
    ip = sent[0]
    wire = raw(ip.payload)
    src, dst = ip_address(ip.src), ip_address(ip.dst)
    advert = decode(wire, src, dst)  # vrrpd accepts both forms on receive
    assert (advert.vrid, advert.priority, advert.adver_int) == (51, 150, 10)
    assert encode(advert, src, dst, checksum_as_v2=True) == wire
    assert encode(advert, src, dst, checksum_as_v2=False) != wire
