"""Builders shared by the core scenario tests: configs, adverts and expected actions."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, ip_address

from vrrpd.config.model import InstanceConfig, VipSpec
from vrrpd.core.actions import (
    AddVips,
    Announce,
    DelVips,
    LogEvent,
    NotifyEvent,
    NotifyTarget,
    RunNotify,
    SendAdvert,
    State,
    StateChanged,
)
from vrrpd.core.instance import Instance
from vrrpd.proto.advert import Advert
from vrrpd.proto.constants import VRRP_GROUP4

OURS = IPv4Address("192.0.2.1")
HIGHER_IP = IPv4Address("192.0.2.200")
LOWER_IP = IPv4Address("192.0.2.0")
VIP = VipSpec(IPv4Interface("192.0.2.10/32"))


def make_cfg(**kw: object) -> InstanceConfig:
    base = InstanceConfig(name="VI_1", vrid=51, interface="eth0", vips=(VIP,))
    return replace(base, **kw)  # type: ignore[arg-type]


def make_instance(**kw: object) -> Instance:
    inst = Instance(make_cfg(**kw))
    inst.link_src = OURS
    return inst


def v2_advert(priority: int, adver_int: int = 1, vips: tuple[str, ...] = ("192.0.2.10",)) -> Advert:
    return Advert(2, 51, priority, adver_int, tuple(ip_address(v) for v in vips), 0, bytes(8))


def v3_advert(priority: int, adver_int_cs: int = 100) -> Advert:
    return Advert(3, 51, priority, adver_int_cs, (IPv4Address("192.0.2.10"),))


def sent(inst: Instance, priority: int) -> SendAdvert:
    """The SendAdvert `inst` emits at `priority` (multicast, TTL 255)."""
    return SendAdvert(
        "VI_1", "eth0", inst.advert(priority), inst.src, (VRRP_GROUP4,), 255,
        inst.cfg.v3_checksum_as_v2,
    )  # fmt: skip


def master_entry(inst: Instance, reason: str, repeat: int = 5) -> list[object]:
    """keepalived's `become_master` order: advert, state, VIPs, gratuitous ARP, notify."""
    return [
        sent(inst, inst.effective_priority),
        StateChanged("VI_1", State.BACKUP, State.MASTER, reason),
        LogEvent("VI_1", "Entering MASTER STATE"),
        LogEvent("VI_1", "setting VIPs.", detail=True),
        AddVips("VI_1", "eth0", inst.cfg.vips),
        Announce("VI_1", "eth0", tuple(v.ip for v in inst.cfg.vips), repeat, 0.0),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.MASTER, inst.effective_priority),
    ]


def backup_init(priority: int = 100) -> list[object]:
    return [
        StateChanged("VI_1", State.INIT, State.BACKUP, "init"),
        LogEvent("VI_1", "Entering BACKUP STATE (init)"),
        RunNotify(NotifyTarget.INSTANCE, "VI_1", NotifyEvent.BACKUP, priority),
    ]


def removed(inst: Instance) -> list[object]:
    return [
        LogEvent("VI_1", "removing VIPs.", detail=True),
        DelVips("VI_1", "eth0", inst.cfg.vips),
    ]


__all__ = [
    "HIGHER_IP",
    "LOWER_IP",
    "OURS",
    "VIP",
    "backup_init",
    "make_cfg",
    "make_instance",
    "master_entry",
    "removed",
    "sent",
    "v2_advert",
    "v3_advert",
]
