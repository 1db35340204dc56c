"""Every VRRP-related sample shipped with keepalived parses, with the expected content."""

from __future__ import annotations

from ipaddress import ip_interface

import pytest
from cfghelp import sample_text

from vrrpd.config.model import AuthType, InitialState

VRRP_SAMPLES = [
    "keepalived.conf.vrrp",
    "keepalived.conf.vrrp.localcheck",
    "keepalived.conf.vrrp.sync",
    "keepalived.conf.vrrp.scripts",
    "keepalived.conf.vrrp.routes",
    "keepalived.conf.vrrp.rules",
    "keepalived.conf.vrrp.static_ipaddress",
    "keepalived.conf.track_interface",
    "keepalived.conf.conditional_conf",
    "keepalived.conf.vrrp.lvs_syncd",
    "keepalived.conf.sample",
    "keepalived.conf.SSL_GET",
]
LVS_ONLY = [
    "keepalived.conf.HTTP_GET.port", "keepalived.conf.IPv6", "keepalived.conf.PING_CHECK",
    "keepalived.conf.SMTP_CHECK", "keepalived.conf.UDP_CHECK", "keepalived.conf.fwmark",
    "keepalived.conf.inhibit", "keepalived.conf.misc_check", "keepalived.conf.misc_check_arg",
    "keepalived.conf.quorum", "keepalived.conf.status_code",
    "keepalived.conf.virtual_server_group", "keepalived.conf.virtualhost",
]  # fmt: skip


def load_sample(name: str, config_id: str = "node1"):  # type: ignore[no-untyped-def]
    from vrrpd.config.loader import check_config
    from vrrpd.config.source import MemorySource

    path = f"/samples/{name}"
    return check_config(path, MemorySource({path: sample_text(name)}), config_id)


def ips(vips) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(v.address) for v in vips]


@pytest.mark.parametrize("name", [n for n in VRRP_SAMPLES if n != "keepalived.conf.vrrp.rules"])
def test_vrrp_samples_load_without_errors(name: str) -> None:
    result = load_sample(name, "high")
    assert result.config is not None
    assert not result.errors, result.errors
    assert result.config.instances
    assert result.exit_code == 0


@pytest.mark.parametrize("name", LVS_ONLY)
def test_lvs_samples_load_their_virtual_servers(name: str) -> None:
    """The LVS side in detail: tests/unit/test_config_lvs.py."""
    result = load_sample(name)
    assert result.config is not None and not result.errors, result.errors
    assert result.config.virtual_servers


def test_sample_vrrp() -> None:
    result = load_sample("keepalived.conf.vrrp")
    config = result.config
    assert config is not None
    assert [i.name for i in config.instances] == ["VI_1", "VI_2", "VI_3", "VI_4"]
    vi1 = config.instances[0]
    assert (vi1.vrid, vi1.priority, vi1.initial_state) == (51, 100, InitialState.MASTER)
    assert vi1.interface == "eth0" and vi1.advert_int_cs == 100 and vi1.version == 2
    assert vi1.auth is not None and vi1.auth.type is AuthType.PASS
    assert vi1.auth.password == b"1111\0\0\0\0"
    assert vi1.garp.master_delay_s == 10 and vi1.smtp_alert
    # the sample duplicates 192.168.200.18 (once with a label): keepalived ignores the second
    assert ips(vi1.vips) == ["192.168.200.16/32", "192.168.200.17/32", "192.168.200.18/32"]
    dup = [p for p in result.problems if "duplicates" in p.message]
    assert len(dup) == 1 and dup[0].location.line == 32
    assert config.global_defs.router_id == "LVS_DEVEL"
    vi2 = config.instances[1]
    assert vi2.auth is None and vi2.priority == 50 and vi2.initial_state is InitialState.BACKUP
    assert [i.interface for i in config.instances] == ["eth0", "eth0", "eth1", "eth1"]
    assert all(i.mcast_group is not None and str(i.mcast_group) == "224.0.0.18"
               for i in config.instances)  # fmt: skip


def test_sample_localcheck_scripts_and_tracking() -> None:
    config = load_sample("keepalived.conf.vrrp.localcheck").config
    assert config is not None
    scripts = {s.name: s for s in config.scripts}
    assert list(scripts) == ["chk_sshd", "chk_haproxy", "chk_http_port", "chk_https_port",
                             "chk_smtp_port"]  # fmt: skip
    sshd = scripts["chk_sshd"]
    assert sshd.argv == ("killall", "-0", "sshd")
    assert (sshd.interval_s, sshd.timeout_s, sshd.weight, sshd.rise, sshd.fall) == (2, 2, -4, 2, 2)
    haproxy = scripts["chk_haproxy"]
    assert (haproxy.weight, haproxy.rise, haproxy.fall, haproxy.timeout_s) == (0, 1, 1, 2)
    # the shell idiom runs through /bin/sh, as keepalived 2.2.7 runs it
    assert scripts["chk_http_port"].argv == ("/bin/sh", "-c", "</dev/tcp/127.0.0.1/80")
    vi1 = config.instances[0]
    assert [(t.name, t.weight) for t in vi1.track_interfaces] == [
        ("eth1", 2), ("eth2", -2), ("eth3", 0)]  # fmt: skip
    assert [(t.name, t.weight) for t in vi1.track_scripts][:2] == [
        ("chk_sshd", None), ("chk_haproxy", 2)]  # fmt: skip
    assert ips(vi1.vips) == ["192.168.200.18/25"]
    assert len(config.instances) == 9


def test_sample_sync_groups() -> None:
    config = load_sample("keepalived.conf.vrrp.sync").config
    assert config is not None
    g1, g2 = config.sync_groups
    assert g1.members == ("VI_1", "VI_2", "VI_5", "VI_6", "VI_7", "VI_8", "VI_9")
    assert g2.members == ("VI_3", "VI_4")
    assert g1.notify.master is not None
    assert g1.notify.master.argv == ("/usr/local/bin/vrrp.mast", "arg1", "arg2")
    assert len(config.instances) == 9


def test_sample_scripts_notify() -> None:
    config = load_sample("keepalived.conf.vrrp.scripts").config
    assert config is not None
    vi1 = config.instance("VI_1")
    assert vi1 is not None and vi1.notify.backup is not None
    assert vi1.notify.backup.argv == ("/usr/local/bin/vrrp.sh", "BACKUP", "VI_1")
    assert config.sync_groups[0].members == ("VI_2", "VI_3")
    assert config.instances[1].priority == 150


def test_sample_routes() -> None:
    config = load_sample("keepalived.conf.vrrp.routes").config
    assert config is not None
    first = config.static_routes[0]
    assert first.dst == "192.168.209.0/24" and str(first.src) == "192.168.100.1"
    assert str(first.via) == "192.168.200.254" and first.dev == "eth0"
    assert len(config.static_routes) == 5
    vr = config.instances[0].virtual_routes
    assert len(vr) == 7
    assert vr[5].type == "blackhole" and vr[5].dst == "192.168.113.1/32"
    assert vr[6].table == "100" and str(vr[6].via) == "192.168.0.1" and vr[6].dst == "0.0.0.0/0"
    assert [v.dev for v in config.instances[0].vips] == [None, "eth1", "eth2"]


def test_sample_rules_reports_the_malformed_prefixes() -> None:
    result = load_sample("keepalived.conf.vrrp.rules")
    assert result.exit_code == 5
    assert [(p.location.line, p.location.col, p.message) for p in result.errors] == [
        (11, 8, "static_rules 'to' address '192.168.100./24' is not an IP prefix"),
        (26, 12, "virtual_rules 'to' address '192.168.200./24' is not an IP prefix"),
    ]
    assert result.config is not None
    assert result.config.static_rules[0].from_ == "192.168.100.0/24"
    assert result.config.static_rules[0].table == "1"
    assert result.config.instances[0].virtual_rules[0].table == "2"


def test_sample_static_ipaddress() -> None:
    config = load_sample("keepalived.conf.vrrp.static_ipaddress").config
    assert config is not None
    assert [(str(v.address), v.dev, v.scope) for v in config.static_ipaddresses] == [
        ("192.168.200.16/32", "eth0", "link"),
        ("192.168.200.17/32", "eth1", "link"),
        ("192.168.200.18/32", "eth2", None),
    ]
    assert ips(config.instances[0].vips) == ["192.168.200.20/32"]


def test_sample_track_interface() -> None:
    config = load_sample("keepalived.conf.track_interface").config
    assert config is not None
    vi1 = config.instances[0]
    assert vi1.interface == "eth0.1"
    assert [(t.name, t.weight) for t in vi1.track_interfaces] == [("eth0", 0), ("eth1", 0)]


@pytest.mark.parametrize(("config_id", "priority", "script"), [
    ("high", 170, "/etc/keepalived/scripts/check_high_VI_0.sh"),
    ("low", 85, "/etc/keepalived/scripts/check_low_VI_0.sh"),
])  # fmt: skip
def test_sample_conditional_conf(config_id: str, priority: int, script: str) -> None:
    config = load_sample("keepalived.conf.conditional_conf", config_id).config
    assert config is not None
    vi0 = config.instances[0]
    assert vi0.priority == priority and vi0.version == 3 and vi0.advert_int_cs == 1200
    assert vi0.vmac is not None
    assert (vi0.vmac.name, vi0.vmac.mac) == ("vrrp.1", "00:00:5e:00:01:01")
    assert config.scripts[0].argv == (script,)
    assert (config.scripts[0].timeout_s, config.scripts[0].rise) == (10, 3)
    assert [(t.name, t.weight) for t in vi0.track_interfaces] == [("eth3", 0), ("eth2", 20)]


def test_sample_conditional_conf_other_id_has_no_script_command() -> None:
    result = load_sample("keepalived.conf.conditional_conf", "other")
    assert result.config is not None
    assert "vrrp_script check_VI_0 has no 'script'" in [p.message for p in result.errors]


def test_samples_with_lvs_parts() -> None:
    config = load_sample("keepalived.conf.sample").config
    assert config is not None and [i.name for i in config.instances] == ["VI_1"]
    lvs = load_sample("keepalived.conf.vrrp.lvs_syncd")
    assert lvs.config is not None and not lvs.errors
    assert lvs.config.instances[0].priority == 150
    assert lvs.config.sync_groups == ()  # old-style member list: keepalived drops the group
    assert ip_interface("192.168.200.16/32") in [v.address for v in lvs.config.instances[0].vips]
