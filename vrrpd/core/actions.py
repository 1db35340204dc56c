"""What the pure core asks the outside world to do, in order.

The engine returns `list[Action]`; the runtime's executor runs them in that order (for example
VIPs are installed before the gratuitous ARP that announces them, RFC 5798 section 6.4.1). Every
action is a frozen value so tests compare lists with `==`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vrrpd.config.model import RouteSpec, RuleSpec, VipSpec
from vrrpd.errors import DropReason
from vrrpd.proto.advert import Advert, IPAddress


class State(enum.StrEnum):
    """Instance states; values are the words keepalived writes in notify args and FIFO lines."""

    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send `advert` from `src` to each of `dsts` on `interface` with IP TTL / hop limit `ttl`.

    `checksum_as_v2` selects the VRRPv3/IPv4 checksum without pseudo-header (RFC 9568,
    keepalived `v3_checksum_as_v2`).
    """

    instance: str
    interface: str
    advert: Advert
    src: IPAddress | None
    dsts: tuple[IPAddress, ...]
    ttl: int
    checksum_as_v2: bool = False


@dataclass(frozen=True, slots=True)
class AddVips:
    """Install addresses, excluded addresses, routes and rules (keepalived `setting VIPs.`)."""

    instance: str
    interface: str
    vips: tuple[VipSpec, ...]
    routes: tuple[RouteSpec, ...] = ()
    rules: tuple[RuleSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class DelVips:
    """Remove what `AddVips` installed (keepalived `removing VIPs.`); idempotent."""

    instance: str
    interface: str
    vips: tuple[VipSpec, ...]
    routes: tuple[RouteSpec, ...] = ()
    rules: tuple[RuleSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Announce:
    """Gratuitous ARP (IPv4) / unsolicited NA (IPv6) for `addresses`, `repeat` rounds.

    keepalived sends `repeat` rounds over every address, spaced by `interval_s` per interface.
    """

    instance: str
    interface: str
    addresses: tuple[IPAddress, ...]
    repeat: int
    interval_s: float = 0.0


class NotifyTarget(enum.StrEnum):
    INSTANCE = "INSTANCE"
    GROUP = "GROUP"


class NotifyEvent(enum.StrEnum):
    """The STATE word of keepalived's notify argv and FIFO lines (`vrrp_notify.c`)."""

    MASTER = "MASTER"
    BACKUP = "BACKUP"
    FAULT = "FAULT"
    STOP = "STOP"
    DELETED = "DELETED"
    MASTER_RX_LOWER_PRI = "MASTER_RX_LOWER_PRI"
    MASTER_PRIORITY = "MASTER_PRIORITY"
    BACKUP_PRIORITY = "BACKUP_PRIORITY"


@dataclass(frozen=True, slots=True)
class RunNotify:
    """Run the notify hooks for an event: state script, generic `notify`, FIFO line, in order.

    `priority` is the effective priority (0 for a GROUP, as keepalived passes). Events without a
    state script (`MASTER_PRIORITY`, ...) only produce the FIFO line.
    """

    target: NotifyTarget
    name: str
    event: NotifyEvent
    priority: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    """An instance moved from `old` to `new`; `reason` is human text for logs and status."""

    instance: str
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """keepalived `(VI_1) Changing effective priority from 100 to 90`."""

    instance: str
    old: int
    new: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """A received datagram was dropped; `instance` is None when none matched."""

    instance: str | None
    reason: DropReason
    src: IPAddress | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A keepalived log line the core decides on (`received lower priority (90) advert ...`).

    `detail` marks lines keepalived prints only with `-D/--log-detail`. Logged as
    `(VI_1) message`, or `VRRP_Group(G1) message` when `group` is set (then `instance` holds
    the sync group's name).
    """

    instance: str
    message: str
    detail: bool = False
    group: bool = False


Action = (
    SendAdvert
    | AddVips
    | DelVips
    | Announce
    | RunNotify
    | StateChanged
    | PriorityChanged
    | Dropped
    | LogEvent
)
