"""The SIGUSR2 stats dump in keepalived 2.2.7's layout, and where dumps go side by side."""

from ipaddress import IPv4Address

from vrrpd.config.model import Config
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState
from vrrpd.runtime.dumps import DEFAULT_STATS, dump_path, format_stats

# Written by Debian's keepalived 2.2.7 for a fresh owner instance (captured in a namespace).
KEEPALIVED_227 = """VRRP Instance: VI_1
  Advertisements:
    Received: 0
    Sent: 1
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 0
    TTL: 0
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 0
  Priority Zero:
    Received: 0
    Sent: 0
"""


def test_stats_dump_matches_keepalived_byte_for_byte():
    from vrrpd.config.model import InstanceConfig

    eng = Engine(
        Config(instances=(InstanceConfig(name="VI_1", vrid=51, interface="d0", priority=255),))
    )
    eng.on_link(LinkState("d0", 3, True, IPv4Address("192.0.2.1")), 0.0)
    eng.start(0.0)
    assert format_stats(eng.status()) == KEEPALIVED_227


def test_dump_path_is_keepalived_default_unless_a_pid_file_scopes_it():
    assert dump_path(DEFAULT_STATS, DEFAULT_STATS, None, "stats") == DEFAULT_STATS
    assert (
        dump_path(DEFAULT_STATS, DEFAULT_STATS, "/run/a/vrrpd.pid", "stats") == "/run/a/vrrpd.stats"
    )
    assert dump_path("/var/x.stats", DEFAULT_STATS, "/run/a/vrrpd.pid", "stats") == "/var/x.stats"
