"""keepalived `use_vmac` / `vmac_xmit_base` in the running daemon (keepalived.md 4.9).

The VMAC (`vrrpd.io.vmac`) is a macvlan carrying the RFC 5798 section 7.3 virtual router MAC.
keepalived puts the VIPs on it and, unless `vmac_xmit_base`, sends and receives adverts on it
too, so switches learn the virtual MAC where the MASTER is. We get the same by rewriting the
instance before the engine sees it: its `interface` becomes the VMAC (or, with
`vmac_xmit_base`, only its VIPs move there), and the VMAC borrows the parent's addresses as
advert sources, as keepalived does: the VMAC has no IPv4 address of its own and, with
IN6_ADDR_GEN_MODE_NONE, no link-local until we copy the parent's onto it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from ipaddress import IPv6Interface

import structlog

from vrrpd.config.model import Config, InstanceConfig, VipSpec
from vrrpd.io.errors import IoError
from vrrpd.io.netlink import LinkInfo, Netlink
from vrrpd.io.vmac import VmacManager

log = structlog.get_logger("vrrpd")

Fault = tuple[str, str, str]  # (instance, fault key, reason)
VMAC_FAULT = "vmac"
LL_WAIT_S = 3.0  # IPv6 DAD on the parent takes about a second (RFC 4862 RetransTimer)


def _rewrite(inst: InstanceConfig) -> InstanceConfig:
    """The instance as the engine runs it: adverts on the VMAC, or only the VIPs there."""
    if inst.vmac is None:
        return inst
    name = inst.vmac.name
    vips = tuple(v if v.dev else dataclasses.replace(v, dev=name) for v in inst.vips)
    evips = tuple(v if v.dev else dataclasses.replace(v, dev=name) for v in inst.excluded_vips)
    if inst.vmac.xmit_base:
        return dataclasses.replace(inst, vips=vips, excluded_vips=evips)
    return dataclasses.replace(inst, interface=name)


def vmac_config(config: Config) -> Config:
    """`config` with every `use_vmac` instance rewritten onto its VMAC."""
    if not any(i.vmac for i in config.instances):
        return config
    return dataclasses.replace(config, instances=tuple(_rewrite(i) for i in config.instances))


@dataclass
class VmacRuntime:
    """Creates the configured VMACs at start, lends them the parents' addresses, removes them."""

    config: Config  # as configured (not rewritten): parents are the configured interfaces
    manager: VmacManager
    parents: dict[str, str] = field(default_factory=dict)  # vmac name -> parent
    links: dict[str, LinkInfo] = field(default_factory=dict)
    announce_dev: dict[str, str] = field(default_factory=dict)  # instance -> GARP interface

    @classmethod
    def build(cls, config: Config, netlink: Netlink) -> VmacRuntime:
        return cls(config, VmacManager(netlink))

    async def create(self) -> list[Fault]:
        """One VMAC per `use_vmac` instance (shared by instances naming the same one); an
        instance whose VMAC cannot be made goes to FAULT with the cause, the others carry on."""
        faults: list[Fault] = []
        for inst in self.config.instances:
            if inst.vmac is None:
                continue
            parent = inst.interface or ""
            try:
                await self._create_one(inst, parent)
            except (IoError, OSError) as exc:
                log.error(f"({inst.name}) cannot create VMAC {inst.vmac.name} on {parent}: {exc}")
                faults.append((inst.name, VMAC_FAULT, f"VMAC {inst.vmac.name}: {exc}"))
                continue
            self.parents[inst.vmac.name] = parent
            self.announce_dev[inst.name] = inst.vmac.name
        return faults

    async def _create_one(self, inst: InstanceConfig, parent: str) -> None:
        assert inst.vmac is not None
        name = inst.vmac.name
        if name not in self.manager.vmacs:
            await self._remove_leftover(name)
        vmac = await self.manager.create(parent, inst.vrid, inst.family, name, inst.vmac.mac)
        log.info(f"({inst.name}) Interface {name} created, MAC {vmac.mac}, parent {parent}")
        if inst.family == 6:
            await self._copy_link_local(parent, vmac.name)

    async def _remove_leftover(self, name: str) -> None:
        """A VMAC of this name left by an unclean exit: keepalived deletes and recreates it."""
        try:
            index = await self.manager.nl.ifindex(name)
        except IoError:
            return
        await self.manager.nl.ipr.link("del", index=index)

    async def _copy_link_local(self, parent: str, vmac: str) -> None:
        """keepalived gives an IPv6 VMAC the parent's link-local, the advert source (5.1.2.1)."""
        info = await self.manager.nl.link_info(parent)
        for _ in range(int(LL_WAIT_S / 0.1)):  # a parent just brought up may still be in DAD
            if info.addr6 is not None:
                break
            await asyncio.sleep(0.1)
            info = await self.manager.nl.link_info(parent)
        if info.addr6 is None:
            raise IoError("parent has no usable link-local address", parent)
        spec = VipSpec(address=IPv6Interface(f"{info.addr6}/64"), dev=vmac)
        await self.manager.nl.add_vips(vmac, (spec,))

    def link_state(self, info: LinkInfo) -> LinkInfo:
        """What the engine should believe of `info`: a VMAC sends from its parent's addresses.

        Never from its own: the first IPv4 address on a VMAC is a VIP, which would change the
        advert source (and the tie-break address) each time mastership moved.
        """
        self.links[info.interface] = info
        parent_name = self.parents.get(info.interface)
        if parent_name is None:
            return info
        parent = self.links.get(parent_name)
        addr4 = parent.addr4 if parent is not None else None
        addr6 = parent.addr6 if parent is not None else None
        return dataclasses.replace(info, addr4=addr4, addr6=addr6)

    def vmacs_of(self, parent: str) -> list[str]:
        """The VMACs on `parent`: their borrowed addresses change with the parent's."""
        return [v for v, p in self.parents.items() if p == parent]

    async def remove_all(self) -> None:
        """keepalived `vrrp_terminate_phase1` step 5: VMACs removed, sysctls restored."""
        try:
            await self.manager.remove_all()
        except (IoError, OSError) as exc:
            log.error(f"cannot remove VMACs: {exc}")
