"""Builders for the actions an instance emits: its advert and what carries it, its addresses.

Pure functions of the instance configuration (RFC 3768 section 5.1, RFC 5798 section 5.1 and
keepalived's `vrrp_build_pkt`), kept apart from the state machine in `instance.py`.
"""

from __future__ import annotations

from vrrpd.config.model import AuthType, InstanceConfig
from vrrpd.core.actions import AddVips, Announce, DelVips, SendAdvert
from vrrpd.proto.advert import Advert, IPAddress
from vrrpd.proto.constants import (
    AUTH_AH,
    AUTH_DATA_LEN,
    AUTH_NONE,
    AUTH_PASS,
    VRRP_GROUP4,
    VRRP_GROUP6,
    VRRP_TTL,
    VRRP_VERSION_2,
)


def advert_for(cfg: InstanceConfig, priority: int) -> Advert:
    """The advert of `cfg` at `priority`: v2 carries whole seconds and the 8-byte auth field
    (keepalived `auth_type PASS`: the password NUL padded), v3 centiseconds and no auth."""
    if cfg.version != VRRP_VERSION_2:
        addrs = tuple(v.ip for v in cfg.vips)
        return Advert(cfg.version, cfg.vrid, priority, cfg.advert_int_cs, addrs)
    auth_type, auth_data = AUTH_NONE, bytes(AUTH_DATA_LEN)
    if cfg.auth is not None:
        auth_type = AUTH_PASS if cfg.auth.type == AuthType.PASS else AUTH_AH
        auth_data = cfg.auth.password[:AUTH_DATA_LEN].ljust(AUTH_DATA_LEN, b"\0")
    return Advert(
        version=cfg.version,
        vrid=cfg.vrid,
        priority=priority,
        adver_int=cfg.advert_int_cs // 100,
        addresses=tuple(v.ip for v in cfg.vips),
        auth_type=auth_type,
        auth_data=auth_data,
    )


def send_advert(cfg: InstanceConfig, src: IPAddress | None, advert: Advert) -> SendAdvert:
    """Multicast to the group with TTL 255, or one copy to each `unicast_peer` at `unicast_ttl`."""
    if cfg.unicast_peers:
        dsts: tuple[IPAddress, ...] = tuple(p.address for p in cfg.unicast_peers)
        ttl = cfg.unicast_ttl if cfg.unicast_ttl is not None else VRRP_TTL
    else:
        dsts = (cfg.mcast_group or (VRRP_GROUP6 if cfg.family == 6 else VRRP_GROUP4),)
        ttl = VRRP_TTL
    iface = cfg.interface or ""
    return SendAdvert(cfg.name, iface, advert, src, dsts, ttl, cfg.v3_checksum_as_v2)


def add_vips(cfg: InstanceConfig) -> AddVips:
    """keepalived `setting VIPs.`: VIPs, excluded VIPs, virtual routes and rules."""
    vips = cfg.vips + cfg.excluded_vips
    return AddVips(cfg.name, cfg.interface or "", vips, cfg.virtual_routes, cfg.virtual_rules)


def del_vips(cfg: InstanceConfig) -> DelVips:
    """keepalived `removing VIPs.`: the same set `add_vips` installs."""
    vips = cfg.vips + cfg.excluded_vips
    return DelVips(cfg.name, cfg.interface or "", vips, cfg.virtual_routes, cfg.virtual_rules)


def announce(cfg: InstanceConfig, repeat: int) -> Announce:
    """Gratuitous ARP / unsolicited NA for every VIP and excluded VIP (keepalived
    `vrrp_send_link_update`), spaced by `vrrp_garp_interval` / `vrrp_gna_interval`."""
    addrs = tuple(v.ip for v in cfg.vips + cfg.excluded_vips)
    interval = cfg.garp.na_interval_s if cfg.family == 6 else cfg.garp.interval_s
    return Announce(cfg.name, cfg.interface or "", addrs, repeat, interval)
