"""The one frozen, typed configuration model that both front-ends produce.

Names follow keepalived.conf keywords (`man keepalived.conf`, keepalived 2.2.x) with three rules:
booleans are positive (`preempt`, not `nopreempt`; `track_primary`, not `dont_track_primary`),
durations carry their unit (`advert_int_cs`, `preempt_delay_s`), and every value is already
defaulted the way keepalived defaults it, so later layers never re-derive defaults.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import TYPE_CHECKING

from vrrpd.errors import Location
from vrrpd.proto.constants import VRRP_GROUP4, VRRP_GROUP6

if TYPE_CHECKING:  # lvsmodel imports this module; the annotations stay strings at run time
    from vrrpd.config.lvsmodel import VirtualServerGroupSpec, VirtualServerSpec

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

NOWHERE = Location("<default>", 0, 0)


class InitialState(enum.StrEnum):
    """keepalived `state`: only the initial wish; every instance starts in BACKUP."""

    BACKUP = "BACKUP"
    MASTER = "MASTER"


class AuthType(enum.StrEnum):
    """keepalived `authentication { auth_type }` (VRRPv2 only)."""

    PASS = "PASS"
    AH = "AH"


@dataclass(frozen=True, slots=True)
class Auth:
    """keepalived `authentication {}`; `password` is the first 8 bytes, NUL padded."""

    type: AuthType
    password: bytes


@dataclass(frozen=True, slots=True)
class VipSpec:
    """One `virtual_ipaddress` / `virtual_ipaddress_excluded` / `static_ipaddress` line.

    `IP[/PREFIX] [brd IP|+|-] [dev IF] [scope S] [label L] [peer IP] [no_track] [-nodad]
    [preferred_lft N|forever] [home] [mngtmpaddr] [noprefixroute] [autojoin]`. `dev` None means
    the instance's interface. `preferred_lft` None means forever; keepalived uses 0 for an IPv6
    /128 VIP, which the front-end fills in. `dad` is False unless `-nodad` was given, because
    keepalived adds IPv6 VIPs with IFA_F_NODAD.
    """

    address: IPInterface
    dev: str | None = None
    brd: str | None = None
    scope: str | None = None
    label: str | None = None
    peer: IPAddress | None = None
    track: bool = True
    dad: bool = False
    preferred_lft: int | None = None
    home: bool = False
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    track_group: str | None = None
    location: Location = NOWHERE

    @property
    def ip(self) -> IPAddress:
        return self.address.ip


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One `virtual_routes` / `static_routes` line in `ip route` syntax.

    `args` keeps the words after removing `no_track`; the named fields are what the front-end
    parsed out of them for validation and for the netlink adapter.
    """

    args: tuple[str, ...]
    family: int = 4
    dst: str | None = None
    type: str | None = None
    via: IPAddress | None = None
    dev: str | None = None
    src: IPAddress | None = None
    table: str | None = None
    metric: int | None = None
    scope: str | None = None
    protocol: str | None = None
    track: bool = True
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One `virtual_rules` / `static_rules` line in `ip rule` syntax."""

    args: tuple[str, ...]
    family: int = 4
    from_: str | None = None
    to: str | None = None
    table: str | None = None
    preference: int | None = None
    fwmark: str | None = None
    iif: str | None = None
    oif: str | None = None
    action: str | None = None
    track: bool = True
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class TrackRef:
    """A `track_interface` / `track_script` / `track_file` / `track_process` entry.

    `weight` None means "the tracker's own weight" (scripts, files, processes); for interfaces
    keepalived's default is 0, which the front-end fills in.
    """

    name: str
    weight: int | None = None
    reverse: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """keepalived `vrrp_script NAME {}`; `timeout_s` is already `interval_s` when 0."""

    name: str
    argv: tuple[str, ...]
    interval_s: float = 1.0
    timeout_s: float = 1.0
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class TrackFileSpec:
    """keepalived `track_file NAME {}` (alias `vrrp_track_file`)."""

    name: str
    path: str
    weight: int = 1
    reverse: bool = False
    init_file: int | None = None
    init_overwrite: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class TrackProcessSpec:
    """keepalived `vrrp_track_process NAME {}`."""

    name: str
    process: str
    args: tuple[str, ...] = ()
    full_command: bool = False
    param_match: str = "exact"
    weight: int = 0
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay_s: float = 0.0
    terminate_delay_s: float = 0.0
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Command:
    """A notify or script command: argv as keepalived splits it, and who runs it."""

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class NotifySpec:
    """keepalived `notify_master/backup/fault/stop/deleted`, `notify`, `notify_master_rx_lower_pri`.

    State scripts get only their argv; the generic `notify` gets TYPE NAME STATE PRIORITY appended.
    """

    master: Command | None = None
    backup: Command | None = None
    fault: Command | None = None
    stop: Command | None = None
    deleted: Command | None = None
    generic: Command | None = None
    master_rx_lower_pri: Command | None = None


@dataclass(frozen=True, slots=True)
class GarpSpec:
    """The `garp_*` family (global `vrrp_garp_*` defaults, per-instance overrides)."""

    master_delay_s: float = 5.0
    master_repeat: int = 5
    master_refresh_s: float = 0.0
    master_refresh_repeat: int = 1
    lower_prio_delay_s: float = 5.0
    lower_prio_repeat: int = 5
    interval_s: float = 0.0
    na_interval_s: float = 0.0


@dataclass(frozen=True, slots=True)
class UnicastPeer:
    """One `unicast_peer {}` line: `IP [min_ttl N] [max_ttl N]`."""

    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None


@dataclass(frozen=True, slots=True)
class VmacSpec:
    """keepalived `use_vmac [[name] IFNAME] [MAC]`; defaults `vrrp.VRID`, 00:00:5e:00:01:VRID."""

    name: str
    mac: str
    xmit_base: bool = False


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    """keepalived `vrrp_instance NAME {}`, defaults resolved.

    `priority` is the base priority (255 when `state MASTER` gave none). `advert_int_cs` is in
    centiseconds for both versions (a multiple of 100 for VRRPv2). `mcast_group` is the group
    adverts go to when `unicast_peers` is empty.
    """

    name: str
    vrid: int
    interface: str | None = None
    family: int = 4
    version: int = 2
    priority: int = 100
    initial_state: InitialState = InitialState.BACKUP
    advert_int_cs: int = 100
    auth: Auth | None = None
    vips: tuple[VipSpec, ...] = ()
    excluded_vips: tuple[VipSpec, ...] = ()
    virtual_routes: tuple[RouteSpec, ...] = ()
    virtual_rules: tuple[RuleSpec, ...] = ()
    src_ip: IPAddress | None = None
    unicast_peers: tuple[UnicastPeer, ...] = ()
    unicast_ttl: int | None = None
    mcast_group: IPAddress | None = None
    check_unicast_src: bool = False
    preempt: bool = True
    preempt_delay_s: float = 0.0
    accept: bool = True
    track_primary: bool = True
    track_interfaces: tuple[TrackRef, ...] = ()
    track_scripts: tuple[TrackRef, ...] = ()
    track_files: tuple[TrackRef, ...] = ()
    track_processes: tuple[TrackRef, ...] = ()
    vmac: VmacSpec | None = None
    garp: GarpSpec = field(default_factory=GarpSpec)
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    down_timer_adverts: int = 3
    skip_check_adv_addr: bool = False
    v3_checksum_as_v2: bool = False
    strict: bool = False
    notify: NotifySpec = field(default_factory=NotifySpec)
    notify_priority_changes: bool = False
    smtp_alert: bool = False
    promote_secondaries: bool = False
    location: Location = NOWHERE

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def owner(self) -> bool:
        """RFC 5798 section 6.1: priority 255 marks the address owner."""
        return self.priority == 255


@dataclass(frozen=True, slots=True)
class SyncGroupConfig:
    """keepalived `vrrp_sync_group NAME {}`."""

    name: str
    members: tuple[str, ...]
    track_interfaces: tuple[TrackRef, ...] = ()
    track_scripts: tuple[TrackRef, ...] = ()
    track_files: tuple[TrackRef, ...] = ()
    track_processes: tuple[TrackRef, ...] = ()
    notify: NotifySpec = field(default_factory=NotifySpec)
    notify_priority_changes: bool = False
    sync_group_tracking_weight: bool = False
    smtp_alert: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class FifoSpec:
    """`notify_fifo` / `vrrp_notify_fifo` with its optional `*_fifo_script`."""

    path: str
    user: str | None = None
    group: str | None = None
    script: Command | None = None


@dataclass(frozen=True, slots=True)
class LvsSyncDaemonSpec:
    """keepalived `lvs_sync_daemon IF [[inst] VI] [id N] [maxlen N] [port N] [ttl N] [group IP]`:
    the IPVS connection-sync daemon, master while instance `instance` is MASTER, else backup
    (both while no instance is named). None: the kernel's default (port 8848, 224.0.0.81)."""

    interface: str
    instance: str | None = None
    sync_id: int | None = None  # default: the instance's VRID, or 0 without an instance
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: IPv4Address | IPv6Address | None = None
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    """The VRRP-relevant part of keepalived `global_defs {}`."""

    router_id: str | None = None
    vrrp_version: int = 2
    mcast_group4: IPv4Address = VRRP_GROUP4
    mcast_group6: IPv6Address = VRRP_GROUP6
    garp: GarpSpec = field(default_factory=GarpSpec)
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    down_timer_adverts: int = 3
    skip_check_adv_addr: bool = False
    check_unicast_src: bool = False
    strict: bool = False
    v3_checksum_as_v2: bool = False
    notify_fifo: FifoSpec | None = None
    vrrp_notify_fifo: FifoSpec | None = None
    lvs_notify_fifo: FifoSpec | None = None  # the checkers' lines only
    notify_priority_changes: bool = False
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool = False
    startup_delay_s: float = 0.0
    default_interface: str = "eth0"
    state_dump_file: str = "/tmp/keepalived.data"
    stats_dump_file: str = "/tmp/keepalived.stats"
    json_dump_file: str = "/tmp/keepalived.json"
    vmac_prefix: str = "vrrp"
    dynamic_interfaces: bool = False
    log_unknown_vrids: bool = False
    fifo_write_states_on_reload: bool = False
    lvs_sync_daemon: LvsSyncDaemonSpec | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A whole configuration: what `vrrpd -f FILE` runs and `vrrpd -d` prints."""

    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    instances: tuple[InstanceConfig, ...] = ()
    sync_groups: tuple[SyncGroupConfig, ...] = ()
    scripts: tuple[ScriptSpec, ...] = ()
    track_files: tuple[TrackFileSpec, ...] = ()
    track_processes: tuple[TrackProcessSpec, ...] = ()
    static_ipaddresses: tuple[VipSpec, ...] = ()
    static_routes: tuple[RouteSpec, ...] = ()
    static_rules: tuple[RuleSpec, ...] = ()
    virtual_servers: tuple[VirtualServerSpec, ...] = ()  # LVS: config.lvsmodel
    virtual_server_groups: tuple[VirtualServerGroupSpec, ...] = ()
    source_files: tuple[str, ...] = ()

    def instance(self, name: str) -> InstanceConfig | None:
        return next((i for i in self.instances if i.name == name), None)

    def script(self, name: str) -> ScriptSpec | None:
        return next((s for s in self.scripts if s.name == name), None)
