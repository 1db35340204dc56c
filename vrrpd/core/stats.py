"""Per-instance counters, named as keepalived's statistics (`vrrp_print.c`, the JSON dump).

The Prometheus exporters and the USR2/JSON dumps read these names, so keep them verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from vrrpd.errors import DropReason


@dataclass(slots=True)
class InstanceStats:
    """keepalived `stats` object of one VRRP instance, plus vrrpd's extra drop counters."""

    advert_rcvd: int = 0
    advert_sent: int = 0
    become_master: int = 0
    release_master: int = 0
    packet_len_err: int = 0
    advert_interval_err: int = 0
    ip_ttl_err: int = 0
    invalid_type_rcvd: int = 0
    addr_list_err: int = 0
    invalid_authtype: int = 0
    authtype_mismatch: int = 0
    auth_failure: int = 0
    pri_zero_rcvd: int = 0
    pri_zero_sent: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def count(self, reason: DropReason) -> None:
        """Bump the counter named like `reason` (keepalived's), or an extra one."""
        name = reason.value
        if name in _KEEPALIVED_NAMES:
            setattr(self, name, getattr(self, name) + 1)
        else:
            self.extra[name] = self.extra.get(name, 0) + 1

    def as_dict(self) -> dict[str, int]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out

    def clear(self) -> None:
        for f in fields(self):
            if f.name != "extra":
                setattr(self, f.name, 0)
        self.extra.clear()


_KEEPALIVED_NAMES = frozenset(f.name for f in fields(InstanceStats) if f.name != "extra")
