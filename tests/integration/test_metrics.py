"""The built-in Prometheus endpoint of the real daemon, scraped from inside its namespace.

r1 (priority 150) and r2 (priority 100) run vrrpd with `--metrics-listen 127.0.0.1:9650` (each
namespace has its own loopback, so both use the same port side by side). The pages are parsed
with prometheus-client's own parser; the state gauges follow the election and the failover, the
counters move, and names and labels are the keepalived exporter's.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
import urllib.request

from conftest import wait_until
from prometheus_client.parser import text_string_to_metric_families
from vrrplab import in_netns
from vrrplab.netns import kill_pid
from vrrplab.procs import RouterProcess

VRRPD = [sys.executable, "-m", "vrrpd", "-f", "{conf}", "-n", "-l", "-D", "-p", "{pid}", "-r",
         "{vrrp_pid}", "--metrics-listen", "127.0.0.1:9650"]  # fmt: skip
URL = "http://127.0.0.1:9650/metrics"
HAS_TRACKERS = importlib.util.find_spec("vrrpd.runtime.trackers") is not None


def conf(name: str, priority: int) -> str:
    return f"""global_defs {{
    router_id {name}
    script_user root
}}
vrrp_script chk_up {{
    script "/bin/true"
    interval 1
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    version 3
    advert_int 0.1
    track_script {{
        chk_up weight 5
    }}
    virtual_ipaddress {{
        192.0.2.100/24
        192.0.2.101/24 dev eth0 label eth0:web
    }}
    virtual_ipaddress_excluded {{
        2001:db8::100/64
    }}
}}
"""


def scrape(ns: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one page, fetched from inside `ns`."""
    with in_netns(ns), urllib.request.urlopen(URL, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(page, metric: str, **labels: str) -> float | None:
    return page.get((metric, tuple(sorted(labels.items()))))


def state(page, ip: str = "192.0.2.100") -> float | None:
    return value(page, "keepalived_vrrp_state", iname="VI_1", intf="eth0", vrid="51", ip_address=ip)


def test_metrics_follow_election_and_failover(lab):
    r1, r2 = lab.routers
    procs = [
        RouterProcess(r, "vrrpd", conf(r.name, prio), lab.workdir, argv=VRRPD)
        for r, prio in ((r1, 150), (r2, 100))
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.wait_started()
        wait_until(lambda: lab.owners("192.0.2.100") == ["r1"], 15, "r1 to hold the VIP")
        wait_until(lambda: state(scrape(r2.ns)) == 1, 10, "r2 to report BACKUP (1)")
        first = scrape(r1.ns)
        assert value(first, "keepalived_up") == 1
        assert state(first) == 2
        assert state(first, "192.0.2.101") == 2  # one series per VIP, as the exporter
        excluded = {"iname": "VI_1", "intf": "eth0", "vrid": "51", "ip_address": "2001:db8::100"}
        assert value(first, "keepalived_vrrp_excluded_state", **excluded) == 2
        common = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
        # Start-up may flap once (r2 can win before r1 runs); MASTER now means one more
        # become than release.
        became = value(first, "keepalived_become_master_total", **common)
        assert became and became >= 1
        assert value(first, "keepalived_release_master_total", **common) == became - 1
        assert value(first, "keepalived_gratuitous_arp_delay_total", **common) == 5
        for err in ("packet_length_errors", "ip_ttl_errors", "authentication_failure"):
            assert value(first, f"keepalived_{err}_total", **common) == 0
        sent = value(first, "keepalived_advertisements_sent_total", **common)
        assert sent and sent > 0
        wait_until(
            lambda: value(scrape(r1.ns), "keepalived_advertisements_sent_total", **common) > sent,
            5,
            "r1's sent counter to move",
        )
        received = value(scrape(r2.ns), "keepalived_advertisements_received_total", **common)
        assert received and received > 0
        if HAS_TRACKERS:
            wait_until(
                lambda: value(scrape(r1.ns), "keepalived_script_status", name="chk_up") == 1,
                5,
                "chk_up to be reported GOOD (1)",
            )

        before = value(scrape(r2.ns), "keepalived_become_master_total", **common)
        kill_pid(procs[0].pid, signal.SIGTERM)  # r1 stops: priority 0, r2 takes over
        procs[0].wait_exit(10)
        wait_until(lambda: state(scrape(r2.ns)) == 2, 10, "r2 to report MASTER (2)")
        after = scrape(r2.ns)
        assert value(after, "keepalived_become_master_total", **common) == before + 1
        assert value(after, "keepalived_priority_zero_received_total", **common) >= 1
    finally:
        for p in procs:
            if p.running():
                p.sigterm()
