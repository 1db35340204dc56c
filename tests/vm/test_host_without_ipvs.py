"""On the host, whose kernel has no IPVS: the LVS side reports it and VRRP runs on.

This one runs on the host itself (not in the VM): the CI kernel is exactly the "kernel without
IPVS" case. The daemon must say so with keepalived's line and keep its VRRP instance working.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vm_guest import vrrpd_argv
from vrrplab import Lab, netns_available, wait_until
from vrrplab.procs import RouterProcess

CONF = """global_defs {
    router_id lonely
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 0.1
    version 3
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.0.2.12 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


def _skip_reason() -> str | None:
    if os.environ.get("VRRPD_IN_VM") == "1":
        return "the VM's kernel has IPVS"
    if os.path.exists("/proc/net/ip_vs"):
        return "this host's kernel has IPVS loaded"
    return netns_available()


@pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))
def test_vrrp_runs_on_when_the_kernel_has_no_ipvs(tmp_path: Path) -> None:
    with Lab(routers=1, tag="noipvs", workdir=tmp_path) as lab:
        proc = RouterProcess(lab.routers[0], "vrrpd", CONF, tmp_path, argv=vrrpd_argv())
        proc.start()
        try:
            proc.wait_started(30)
            wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], 30, "r1 to hold the VIP")
            log = proc.output()
            assert "IPVS: Can't initialize ipvs: IPVS is not available in this kernel" in log, log
            assert "(VI_1) Entering MASTER STATE" in log, log
            proc.sigterm(30)
            assert "Traceback" not in proc.output(), proc.output()
        finally:
            if proc.running():
                proc.kill9()
