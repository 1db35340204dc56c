"""keepalived `use_vmac`: a macvlan carrying the RFC 5798 section 7.3 virtual router MAC.

As keepalived builds it (`vrrp_vmac.c`, `vrrp_if_config.c`, keepalived.md 4.9): a macvlan named
`vrrp.<VRID>` on the parent, MACVLAN_MODE_PRIVATE, MAC 00:00:5e:00:01:VRID (IPv6 ...:02:VRID),
IN6_ADDR_GEN_MODE_NONE (no automatic link-local). Sysctls: on the VMAC accept_local=1,
arp_ignore=1, rp_filter=0; on the parent arp_ignore=1, arp_filter=1; `all.rp_filter` is lowered
to 0 with the parent keeping the greater of its own and the old `all` value, so reverse-path
filtering on the parent does not change. Every changed value is saved and restored on removal;
the parent's values are restored when its last VMAC goes.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from pyroute2.netlink.exceptions import NetlinkError

from vrrpd.io.errors import IoError
from vrrpd.io.netlink import Netlink
from vrrpd.proto.constants import vmac as vmac_address

MACVLAN_MODE_PRIVATE = 1
IN6_ADDR_GEN_MODE_NONE = 1
VMAC_SYSCTLS = {"accept_local": 1, "arp_ignore": 1, "rp_filter": 0}
PARENT_SYSCTLS = {"arp_ignore": 1, "arp_filter": 1}


def conf_path(interface: str, key: str) -> str:
    return f"/proc/sys/net/ipv4/conf/{interface}/{key}"


def read_sysctl(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


def write_sysctl(path: str, value: int) -> None:
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as exc:
        raise IoError.from_os(f"cannot write {path}", None, exc) from exc


@dataclass
class Vmac:
    """One VMAC we created."""

    name: str
    parent: str
    mac: str
    ifindex: int = 0


@dataclass
class VmacManager:
    """Creates and removes VMACs and owns the sysctl values to restore."""

    nl: Netlink
    vmacs: dict[str, Vmac] = field(default_factory=dict)
    saved: dict[str, int] = field(default_factory=dict)  # path -> original value

    async def create(
        self,
        parent: str,
        vrid: int,
        family: int = 4,
        name: str | None = None,
        mac: str | None = None,
    ) -> Vmac:
        """keepalived `use_vmac [NAME] [MAC]`; an existing VMAC of ours is reused."""
        name = name or f"vrrp.{vrid}"
        if name in self.vmacs:
            return self.vmacs[name]
        vmac = Vmac(name=name, parent=parent, mac=mac or vmac_address(vrid, family))
        parent_index = await self.nl.ifindex(parent)
        try:
            await self.nl.ipr.link(
                "add",
                ifname=name,
                kind="macvlan",
                link=parent_index,
                macvlan_mode="private",
                address=vmac.mac,
            )
        except NetlinkError as exc:
            raise IoError(f"cannot create VMAC {name}", parent, int(exc.code or 0)) from exc
        self.vmacs[name] = vmac
        vmac.ifindex = await self.nl.ifindex(name)
        await self._addrgenmode_none(vmac)
        self._set_sysctls(vmac)
        await self.nl.ipr.link("set", index=vmac.ifindex, state="up")
        return vmac

    async def _addrgenmode_none(self, vmac: Vmac) -> None:
        """No kernel link-local on the VMAC: it would derive from the shared MAC (RFC 5798 7.3)."""
        spec = {
            "attrs": [
                ["AF_INET6", {"attrs": [["IFLA_INET6_ADDR_GEN_MODE", IN6_ADDR_GEN_MODE_NONE]]}]
            ]
        }
        try:
            await self.nl.ipr.link("set", index=vmac.ifindex, IFLA_AF_SPEC=spec)
        except NetlinkError as exc:
            raise IoError("cannot set addrgenmode none", vmac.name, int(exc.code or 0)) from exc

    def _save_and_set(self, path: str, value: int) -> None:
        if path not in self.saved:
            self.saved[path] = read_sysctl(path)
        write_sysctl(path, value)

    def _set_sysctls(self, vmac: Vmac) -> None:
        for key, value in VMAC_SYSCTLS.items():
            write_sysctl(conf_path(vmac.name, key), value)  # gone with the VMAC: nothing to save
        for key, value in PARENT_SYSCTLS.items():
            self._save_and_set(conf_path(vmac.parent, key), value)
        all_rp = read_sysctl(conf_path("all", "rp_filter"))
        if all_rp > 0:
            parent_rp = read_sysctl(conf_path(vmac.parent, "rp_filter"))
            self._save_and_set(conf_path(vmac.parent, "rp_filter"), max(parent_rp, all_rp))
            self._save_and_set(conf_path("all", "rp_filter"), 0)

    async def remove(self, name: str) -> None:
        """Delete the VMAC (already gone is fine); restore sysctls once no VMAC is left."""
        vmac = self.vmacs.pop(name, None)
        if vmac is None:
            return
        try:
            await self.nl.ipr.link("del", index=vmac.ifindex)
        except NetlinkError as exc:
            if int(exc.code or 0) not in (errno.ENODEV, errno.ENOENT):
                raise IoError(f"cannot delete VMAC {name}", vmac.parent, int(exc.code)) from exc
        if not any(v.parent == vmac.parent for v in self.vmacs.values()):
            self._restore(vmac.parent)

    def _restore(self, parent: str) -> None:
        prefixes = (conf_path(parent, ""), conf_path("all", ""))
        for path in [p for p in self.saved if p.startswith(prefixes)]:
            value = self.saved.pop(path)
            try:
                write_sysctl(path, value)
            except IoError:
                continue  # the parent itself vanished; nothing left to restore

    async def remove_all(self) -> None:
        """At exit (keepalived: `vrrp_terminate_phase1` step 5)."""
        for name in list(self.vmacs):
            await self.remove(name)
