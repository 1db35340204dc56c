"""io.vmac: keepalived `use_vmac` macvlan with the RFC 5798 virtual MAC, sysctls restored."""

from __future__ import annotations

import json
import subprocess

from conftest import run_in
from vrrplab.netns import sysctl

from vrrpd.io.netlink import Netlink
from vrrpd.io.vmac import VmacManager, conf_path, read_sysctl


def link(ns: str, dev: str) -> dict[str, object] | None:
    proc = subprocess.run(["ip", "-n", ns, "-d", "-j", "link", "show", "dev", dev],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def parent_values() -> dict[str, int]:
    keys = [("eth0", "arp_ignore"), ("eth0", "arp_filter"), ("eth0", "rp_filter"),
            ("all", "rp_filter")]  # fmt: skip
    return {f"{i}.{k}": read_sysctl(conf_path(i, k)) for i, k in keys}


def test_vmac_created_with_mac_mode_sysctls_and_removed(lab):
    r1 = lab.routers[0]
    sysctl(r1.ns, "net.ipv4.conf.all.rp_filter", 1)  # keepalived lowers it and restores it
    seen: dict[str, object] = {}

    async def scenario() -> None:
        nl = Netlink()
        vmacs = VmacManager(nl)
        try:
            seen["before"] = parent_values()
            v4 = await vmacs.create("eth0", 51)
            v6 = await vmacs.create("eth0", 51, family=6, name="vrrp6.51")
            seen["link4"], seen["link6"] = link(r1.ns, v4.name), link(r1.ns, v6.name)
            seen["vmac"] = {k: read_sysctl(conf_path("vrrp.51", k))
                            for k in ("accept_local", "arp_ignore", "rp_filter")}  # fmt: skip
            seen["during"] = parent_values()
            await vmacs.remove("vrrp.51")
            seen["after_one"] = parent_values()
            await vmacs.remove_all()
            await vmacs.remove_all()  # idempotent
            seen["after"] = parent_values()
        finally:
            await nl.close()

    run_in(r1.ns, scenario)
    link4 = seen["link4"]
    assert isinstance(link4, dict)
    assert link4["address"] == "00:00:5e:00:01:33"
    info = link4["linkinfo"]
    assert info["info_kind"] == "macvlan" and info["info_data"]["mode"] == "private"
    assert link4["inet6_addr_gen_mode"] == "none"
    assert "UP" in link4["flags"]
    link6 = seen["link6"]
    assert isinstance(link6, dict) and link6["address"] == "00:00:5e:00:02:33"
    assert seen["vmac"] == {"accept_local": 1, "arp_ignore": 1, "rp_filter": 0}
    assert seen["during"] == {"eth0.arp_ignore": 1, "eth0.arp_filter": 1, "eth0.rp_filter": 1,
                              "all.rp_filter": 0}  # fmt: skip
    assert seen["after_one"] == seen["during"]  # vrrp6.51 still uses the parent
    assert seen["after"] == seen["before"]
    assert link(r1.ns, "vrrp.51") is None and link(r1.ns, "vrrp6.51") is None
