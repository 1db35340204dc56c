"""`python -m vrrplab.null_ipvs VRRPD-ARGS...`: vrrpd with its IPVS netlink calls made no-ops.

For benchmarks on a kernel without IPVS (the CI host: CONFIG_IP_VS not set). There the LVS
service logs `IPVS: Can't initialize ipvs` and, as keepalived's checker process does, runs no
checker at all, so the health checkers' cost could not be measured. Here `Ipvs.open` succeeds and
`apply`/`clear` change nothing: everything else (config, checkers, sockets, quorum, notifies,
the VRRP path) is the real daemon. In a steady state where every real server stays up the real
daemon makes no IPVS call after the first apply either, so the measured cost is the checkers'.
Never used by tests: the IPVS side itself is tested against a real IPVS kernel (tests/vm/).
"""

from __future__ import annotations

import sys
from typing import Any

from vrrpd.io import ipvs


async def _open(self: ipvs.Ipvs) -> None:
    return None


async def _apply(self: ipvs.Ipvs, desired: Any) -> ipvs.Changes:
    return ipvs.Changes()


async def _clear(self: ipvs.Ipvs) -> ipvs.Changes:
    return ipvs.Changes()


def main() -> int:
    ipvs.Ipvs.open = _open  # type: ignore[method-assign]
    ipvs.Ipvs.apply = _apply  # type: ignore[method-assign]
    ipvs.Ipvs.clear = _clear  # type: ignore[method-assign]
    from vrrpd.cli import main as vrrpd_main

    sys.argv[0] = "vrrpd"
    return vrrpd_main()


if __name__ == "__main__":
    sys.exit(main())
