"""The daemon's optional subsystems (trackers, control socket, metrics, ...) as services.

A service is built from the running `Runtime`, started after the engine has started (so its
first inputs meet instances that exist) and stopped, last first, before the engine shuts down.
It changes engine state only through `runtime.submit(fn)` / `await runtime.call(fn)`, which run
`fn(now)` in the single consumer task (../../DESIGN.md "How one advert travels"); long-lived
work goes in `runtime.tasks` and is cancelled by `stop()`.

Each subsystem registers itself in `build_services` with one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from vrrpd.runtime import lvs, metrics, trackers
from vrrpd.runtime.control import ControlService

if TYPE_CHECKING:
    from vrrpd.runtime.daemon import Runtime


class Service(Protocol):
    """What `Runtime` needs of a subsystem."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_services(runtime: Runtime) -> list[Service]:
    """Every service this configuration and these options need, in start order."""
    services: list[Service] = []
    services += trackers.build(runtime)  # vrrp_script / track_* (runtime/trackers.py)
    services += lvs.build(runtime)  # virtual_server: checkers + IPVS (runtime/lvs.py)
    services += metrics.build(runtime)  # `--metrics-listen ADDR:PORT`, else none
    services.append(ControlService(runtime))
    return services
