"""The optional Prometheus endpoint (`vrrpd --metrics-listen ADDR:PORT`), off by default.

Metric names, types and labels are those of the maintained keepalived exporter
(mehdy/keepalived-exporter, successor of cafebazaar's; see shared/reference/vrrp-rfc-and-peers.md
section 5), so its dashboards and alerts work unchanged: `keepalived_up`,
`keepalived_vrrp_state{iname,intf,vrid,ip_address}` (0..3 = INIT/BACKUP/MASTER/FAULT, one series
per VIP with `intf` its device, or one with `ip_address=""` for an instance without VIPs),
`keepalived_vrrp_excluded_state`, the fourteen keepalived counters with `{iname,intf,vrid}`
(`keepalived_advertisements_received_total`, ..., `keepalived_priority_zero_sent_total`),
`keepalived_gratuitous_arp_delay_total` and `keepalived_script_status{name}` (BAD 0 / GOOD 1,
from the "trackers" service when it runs).

prometheus-client serves HTTP from its own thread. A scrape asks the consumer task for one
snapshot (`runtime.call`, a few microseconds per instance between two inputs) and waits at
most `SCRAPE_TIMEOUT_S`; a daemon that does not answer in time is reported `keepalived_up 0`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from vrrpd.runtime.datadump import STATE_NUMBER, script_results

if TYPE_CHECKING:
    from vrrpd.runtime.daemon import Runtime

log = structlog.get_logger("vrrpd")

SCRAPE_TIMEOUT_S = 2.0
LABELS = ("iname", "intf", "vrid")
VIP_LABELS = ("iname", "intf", "vrid", "ip_address")
# exporter metric -> keepalived counter (the JSON dump's `stats` keys)
COUNTERS = (
    ("keepalived_advertisements_received_total", "advert_rcvd", "Advertisements received"),
    ("keepalived_advertisements_sent_total", "advert_sent", "Advertisements sent"),
    ("keepalived_become_master_total", "become_master", "Became master"),
    ("keepalived_release_master_total", "release_master", "Released master"),
    ("keepalived_packet_length_errors_total", "packet_len_err", "Packet length errors"),
    (
        "keepalived_advertisements_interval_errors_total",
        "advert_interval_err",
        "Advertisement interval errors",
    ),
    ("keepalived_ip_ttl_errors_total", "ip_ttl_err", "TTL errors"),
    ("keepalived_invalid_type_received_total", "invalid_type_rcvd", "Invalid type errors"),
    ("keepalived_address_list_errors_total", "addr_list_err", "Address list errors"),
    ("keepalived_authentication_invalid_total", "invalid_authtype", "Authentication invalid"),
    ("keepalived_authentication_mismatch_total", "authtype_mismatch", "Authentication mismatch"),
    ("keepalived_authentication_failure_total", "auth_failure", "Authentication failure"),
    ("keepalived_priority_zero_received_total", "pri_zero_rcvd", "Priority zero received"),
    ("keepalived_priority_zero_sent_total", "pri_zero_sent", "Priority zero sent"),
)


def parse_listen(text: str) -> tuple[str, int]:
    """`ADDR:PORT`, `[V6ADDR]:PORT` or `:PORT` (every address) -> (host, port); ValueError with
    the reason otherwise (the command line turns it into a usage error)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not ADDR:PORT (PORT 1-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IP address") from None
    return host or "0.0.0.0", int(port_text)


@dataclass(frozen=True, slots=True)
class InstanceSample:
    """What one scrape needs of one instance, copied in the consumer task."""

    name: str
    interface: str
    vrid: int
    state: int
    vips: tuple[tuple[str, str], ...]  # (address, device)
    excluded: tuple[tuple[str, str], ...]
    stats: dict[str, int]
    garp_delay_s: float


def take_sample(runtime: Runtime) -> tuple[list[InstanceSample], dict[str, bool | None]]:
    """Runs as `fn(now)` in the consumer task: a copy of the engine and the trackers' state."""
    samples = []
    for inst in runtime.engine.instances.values():
        cfg, iface = inst.cfg, inst.interface
        samples.append(
            InstanceSample(
                name=inst.name,
                interface=iface,
                vrid=cfg.vrid,
                state=STATE_NUMBER.get(inst.state, 0),
                vips=tuple((str(v.address.ip), v.dev or iface) for v in cfg.vips),
                excluded=tuple((str(v.address.ip), v.dev or iface) for v in cfg.excluded_vips),
                stats=inst.stats.as_dict(),
                garp_delay_s=cfg.garp.master_delay_s,
            )
        )
    trackers = next((s for s in runtime.services if s.name == "trackers"), None)
    snapshot = getattr(trackers, "snapshot", None)
    scripts = {s.name for s in runtime.config.scripts}
    results = script_results(snapshot() if snapshot is not None else None)
    return samples, {k: v for k, v in results.items() if k in scripts}


class KeepalivedCollector:
    """A prometheus-client collector that reads the running engine at scrape time."""

    def __init__(self, runtime: Runtime, loop: asyncio.AbstractEventLoop) -> None:
        self.runtime = runtime
        self.loop = loop

    def describe(self) -> list[Any]:
        return []  # unchecked collector: nothing is read at registration

    def collect(self) -> Iterator[Any]:
        # Imported on use: prometheus-client costs ~60 ms, which `vrrpd -t` should not pay.
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        sample = self._sample()
        up = GaugeMetricFamily("keepalived_up", "Status")
        up.add_metric([], 1 if sample is not None else 0)
        yield up
        if sample is None:
            return
        instances, scripts = sample
        state = GaugeMetricFamily("keepalived_vrrp_state", "State of vrrp", labels=VIP_LABELS)
        excluded = GaugeMetricFamily(
            "keepalived_vrrp_excluded_state", "State of vrrp with excluded VIP", labels=VIP_LABELS
        )
        counters = [(CounterMetricFamily(n, h, labels=LABELS), key) for n, key, h in COUNTERS]
        garp = CounterMetricFamily(
            "keepalived_gratuitous_arp_delay_total", "Gratuitous ARP delay", labels=LABELS
        )
        for s in instances:
            labels = [s.name, s.interface, str(s.vrid)]
            for address, dev in s.vips or (("", s.interface),):
                state.add_metric([s.name, dev, str(s.vrid), address], s.state)
            for address, dev in s.excluded:
                excluded.add_metric([s.name, dev, str(s.vrid), address], s.state)
            for family, key in counters:
                family.add_metric(labels, s.stats.get(key, 0))
            garp.add_metric(labels, s.garp_delay_s)
        yield from (state, excluded, *(f for f, _ in counters), garp)
        status = GaugeMetricFamily(
            "keepalived_script_status", "Tracker Script Status", labels=["name"]
        )
        for name, good in sorted(scripts.items()):
            if good is not None:
                status.add_metric([name], int(good))
        yield status

    def _sample(self) -> tuple[list[InstanceSample], dict[str, bool | None]] | None:
        """Called in prometheus-client's HTTP thread; the engine is only read in its own task."""
        if self.loop.is_closed():
            return None
        future = asyncio.run_coroutine_threadsafe(
            self.runtime.call(lambda _now: take_sample(self.runtime)), self.loop
        )
        try:
            result: tuple[list[InstanceSample], dict[str, bool | None]] = future.result(
                SCRAPE_TIMEOUT_S
            )
        except (concurrent.futures.TimeoutError, Exception) as exc:
            future.cancel()
            log.warning(f"metrics: no snapshot from the daemon ({exc!r})")
            return None
        return result


class MetricsService:
    """`name = "metrics"`: the HTTP endpoint, started after the engine, stopped before it."""

    name = "metrics"

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        self.runtime = runtime
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: Any = None

    async def start(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

        registry = CollectorRegistry(auto_describe=False)
        registry.register(KeepalivedCollector(self.runtime, asyncio.get_running_loop()))
        try:
            self._server, self._thread = start_http_server(self.port, self.host, registry)
        except OSError as exc:  # a busy port must not stop VRRP
            log.error(f"metrics: cannot listen on {self.host}:{self.port}: {exc.strerror}")
            return
        log.info(f"metrics: serving on http://{self.host}:{self.port}/metrics")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)  # returns once serve_forever has left
            server.server_close()


def build(runtime: Runtime) -> list[MetricsService]:
    """The metrics service if `--metrics-listen` was given (else nothing: off by default)."""
    listen = getattr(runtime, "metrics_listen", None)
    if not listen:
        return []
    host, port = parse_listen(listen)
    return [MetricsService(runtime, host, port)]
