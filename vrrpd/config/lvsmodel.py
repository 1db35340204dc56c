"""The frozen model of keepalived's LVS side: `virtual_server_group`, `virtual_server`,
`real_server` and their health checkers (man keepalived.conf "LVS CONFIGURATION").

Same rules as `config.model`: every value is already defaulted and inherited the way keepalived
does it (a checker's timing comes from the checker, else its real server, else its virtual
server, else the checker type's default), durations carry their unit, booleans are positive.
So the checkers and the IPVS glue never re-derive a default.

The labels (`vs_label`, `rs_label`) are keepalived's `FMT_VS`/`FMT_RS` texts (`[192.0.2.10]:tcp:80`,
`FWM 1`, `[GROUP]:0`), used in log lines and notify FIFO lines.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vrrpd.config.model import NOWHERE, Command, IPAddress, TrackFileSpec
from vrrpd.errors import Location

# man keepalived.conf "Virtual server(s)": the IPVS schedulers keepalived accepts.
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed",
              "nq", "twos")  # fmt: skip
SCHED_FLAGS = ("flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback")
DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")
HTTP_PROTOCOLS = ("1.0", "1.0C", "1.1")
DEFAULT_STATUS_CODES = ((200, 299),)
DEFAULT_HELO_NAME = "smtpchecker.keepalived.org"
DEFAULT_MAX_REPLY_LENGTH = 255  # man5 UDP_CHECK `max_reply_length`


class LvsMethod(enum.StrEnum):
    """keepalived `lvs_method` (alias `lb_kind`); keepalived has no FULLNAT."""

    NAT = "NAT"
    DR = "DR"
    TUN = "TUN"


class LvsProtocol(enum.StrEnum):
    """keepalived `protocol`."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class CheckerKind(enum.StrEnum):
    """The health checkers vrrpd runs (man5 "CHECKER_TYPE")."""

    TCP_CHECK = "TCP_CHECK"
    HTTP_GET = "HTTP_GET"
    SSL_GET = "SSL_GET"
    MISC_CHECK = "MISC_CHECK"
    DNS_CHECK = "DNS_CHECK"
    SMTP_CHECK = "SMTP_CHECK"
    PING_CHECK = "PING_CHECK"
    UDP_CHECK = "UDP_CHECK"
    FILE_CHECK = "FILE_CHECK"


@dataclass(frozen=True, slots=True)
class Forwarding:
    """`lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`."""

    method: LvsMethod = LvsMethod.NAT
    tunnel_type: str | None = None
    tunnel_port: int | None = None
    tunnel_csum: str | None = None


@dataclass(frozen=True, slots=True)
class RegexSpec:
    """A url's `regex` with `regex_no_match`, `regex_options` (PCRE2 option names, see
    `config.lvsurl`), `regex_min_offset`, `regex_max_offset` (None: no limit) and
    `regex_stack START MAX` (kept for the record: Python's `re` has no JIT stack)."""

    pattern: str
    no_match: bool = False
    options: tuple[str, ...] = ()
    min_offset: int = 0
    max_offset: int | None = None
    stack: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class UrlSpec:
    """One `url {}` of HTTP_GET/SSL_GET. `virtualhost` is the Host header to send, already
    resolved from the url, checker, real server or virtual server (None: the connect address);
    `digest` is lower-case hex MD5 of the body (keepalived's genhash)."""

    path: str
    digest: str | None = None
    status_codes: tuple[tuple[int, int], ...] = DEFAULT_STATUS_CODES
    virtualhost: str | None = None
    regex: RegexSpec | None = None
    location: Location = NOWHERE

    def status_ok(self, code: int) -> bool:
        return any(lo <= code <= hi for lo, hi in self.status_codes)


@dataclass(frozen=True, slots=True)
class SslSpec:
    """keepalived's top-level `SSL { password; ca; certificate; key }` (man5 "SSL"), the TLS
    client settings of every SSL_GET. `locations` says where each file keyword was given, so a
    missing file is reported at its line."""

    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    locations: tuple[tuple[str, Location], ...] = ()
    location: Location = NOWHERE

    def files(self) -> list[tuple[str, str, Location]]:
        """(keyword, path, where) of each file the block names."""
        where = dict(self.locations)
        named = (("ca", self.ca), ("certificate", self.certificate), ("key", self.key))
        return [(kw, path, where.get(kw, self.location)) for kw, path in named if path]


@dataclass(frozen=True, slots=True)
class HttpParams:
    """HTTP_GET / SSL_GET specifics: `http_protocol`, `url {}`, SNI (SSL_GET `enable_sni`);
    `ssl` is the global `SSL {}` block for an SSL_GET (None: keepalived's generated context)."""

    urls: tuple[UrlSpec, ...] = ()
    http_protocol: str = "1.0"
    enable_sni: bool = False
    sni_name: str | None = None
    fast_recovery: bool = False
    ssl: SslSpec | None = None


@dataclass(frozen=True, slots=True)
class MiscParams:
    """MISC_CHECK: `misc_path` (argv and `user`), `misc_timeout` (default: delay_loop),
    `misc_dynamic` (exit 2..255 sets the weight to code - 2)."""

    command: Command
    timeout_s: float
    dynamic: bool = False


@dataclass(frozen=True, slots=True)
class DnsParams:
    """DNS_CHECK `type` (default SOA) and `name` (default `.`)."""

    type: str = "SOA"
    name: str = "."


@dataclass(frozen=True, slots=True)
class SmtpParams:
    """SMTP_CHECK `helo_name`."""

    helo_name: str = DEFAULT_HELO_NAME


@dataclass(frozen=True, slots=True)
class UdpParams:
    """UDP_CHECK: `payload` (None: random bytes), `require_reply [HEX]`, `min_reply_length`,
    `max_reply_length`. Hex strings are kept normalised, two characters a byte, upper case,
    `x` for a nibble `require_reply` ignores (`AB120F`, `4x0A`)."""

    payload: str | None = None
    require_reply: bool = False
    reply: str | None = None
    min_reply_length: int = 0
    max_reply_length: int = DEFAULT_MAX_REPLY_LENGTH


@dataclass(frozen=True, slots=True)
class FileCheckParams:
    """FILE_CHECK: the `track_file` it reads (resolved), `weight W [reverse]` (default: the
    track_file's own) and `dynamic` (the value times the weight is added to the real server's
    weight)."""

    file: TrackFileSpec
    weight: int = 1
    reverse: bool = False
    dynamic: bool = False


CheckParams = HttpParams | MiscParams | DnsParams | SmtpParams | UdpParams | FileCheckParams | None


@dataclass(frozen=True, slots=True)
class CheckerSpec:
    """One checker block with keepalived's inheritance applied.

    Connection options (`connect_ip`, `connect_port`, `bindto`, ...) are None for MISC_CHECK
    and FILE_CHECK; `connect_port` is None for PING_CHECK. `retry` defaults: 1, DNS_CHECK 3,
    MISC_CHECK 0; `delay_before_retry_s`: 1 s, HTTP_GET/SSL_GET 3 s, DNS_CHECK delay_loop;
    `warmup_s` defaults to delay_loop (a random start delay up to it). FILE_CHECK has no
    timing: it follows its file."""

    kind: CheckerKind
    connect_ip: IPAddress | None = None
    connect_port: int | None = None
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout_s: float = 5.0
    retry: int = 1
    delay_before_retry_s: float = 1.0
    delay_loop_s: float = 60.0
    warmup_s: float = 60.0
    alpha: bool = False
    log_all_failures: bool = False
    params: CheckParams = None
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class RealServerSpec:
    """`real_server IP [PORT] {}`; `port` is the virtual server's when not given (0 for a
    port-less fwmark service)."""

    address: IPAddress
    port: int
    weight: int = 1
    forwarding: Forwarding = Forwarding()
    inhibit_on_failure: bool = False
    notify_up: Command | None = None
    notify_down: Command | None = None
    uthreshold: int = 0
    lthreshold: int = 0
    checkers: tuple[CheckerSpec, ...] = ()
    location: Location = NOWHERE

    @property
    def family(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True)
class SorryServerSpec:
    """`sorry_server IP [PORT]`, `sorry_server_inhibit`, `sorry_server_lvs_method`."""

    address: IPAddress
    port: int
    forwarding: Forwarding = Forwarding()
    inhibit: bool = False


@dataclass(frozen=True, slots=True)
class VsgEntry:
    """One `virtual_server_group` line: `IP[-LAST] [PORT]`, `IP/PREFIX [PORT]` or
    `fwmark N [inet|inet6]`. An address range is `first`..`last` (inclusive)."""

    first: IPAddress | None = None
    last: IPAddress | None = None
    port: int = 0
    fwmark: int | None = None
    family: int = 4
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class VirtualServerGroupSpec:
    """`virtual_server_group NAME {}`."""

    name: str
    entries: tuple[VsgEntry, ...] = ()
    location: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class VirtualServerSpec:
    """`virtual_server IP [PORT] | fwmark N | group NAME {}` with defaults resolved.

    Exactly one of `address`, `fwmark`, `group` is set. `persistence_timeout_s` None means not
    persistent (360 when given without a value). `quorum` 1 and `hysteresis` 0 as keepalived.
    """

    address: IPAddress | None = None
    port: int = 0
    fwmark: int | None = None
    group: str | None = None
    family: int = 4
    protocol: LvsProtocol = LvsProtocol.TCP
    scheduler: str = "wlc"
    sched_flags: tuple[str, ...] = ()
    ops: bool = False
    forwarding: Forwarding = Forwarding()
    persistence_timeout_s: int | None = None
    persistence_granularity: str | None = None
    persistence_engine: str | None = None
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Command | None = None
    quorum_down: Command | None = None
    sorry_server: SorryServerSpec | None = None
    alpha: bool = False
    omega: bool = False
    ha_suspend: bool = False
    real_servers: tuple[RealServerSpec, ...] = ()
    location: Location = NOWHERE

    @property
    def label(self) -> str:
        return vs_label(self)


def inet_trio(address: IPAddress, protocol: LvsProtocol, port: int) -> str:
    """keepalived's `inet_sockaddrtotrio`: `[192.0.2.1]:tcp:80`."""
    return f"[{address}]:{protocol.value.lower()}:{port}"


def vs_label(vs: VirtualServerSpec) -> str:
    """keepalived `FMT_VS`: `[ip]:tcp:80`, `FWM 1` or `[GROUP]:PORT`."""
    if vs.group is not None:
        return f"[{vs.group}]:{vs.port}"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    assert vs.address is not None  # exactly one of address/fwmark/group is set
    return inet_trio(vs.address, vs.protocol, vs.port)


def rs_label(vs: VirtualServerSpec, rs: RealServerSpec | SorryServerSpec) -> str:
    """keepalived `FMT_RS`: the real server with its virtual server's protocol."""
    return inet_trio(rs.address, vs.protocol, rs.port)
