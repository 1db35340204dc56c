"""The LVS side of the configuration (man keepalived.conf "LVS CONFIGURATION"): every LVS sample
keepalived ships parses, keepalived's defaults and inheritance, errors located with hints, and the
YAML front-end producing the same model."""

from __future__ import annotations

import gzip
import re
from ipaddress import ip_address
from pathlib import Path

import pytest

from vrrpd.config.diag import Problems
from vrrpd.config.dump import dump_yaml, strip_locations
from vrrpd.config.loader import LoadResult, check_config
from vrrpd.config.lvsmodel import (
    CheckerKind,
    DnsParams,
    HttpParams,
    LvsMethod,
    LvsProtocol,
    MiscParams,
    SmtpParams,
    VirtualServerSpec,
    rs_label,
    vs_label,
)
from vrrpd.config.source import MemorySource
from vrrpd.config.yamlconf import parse_yaml_text
from vrrpd.errors import Severity

SAMPLES = Path("/usr/share/doc/keepalived/samples")
# Warnings the LVS samples may give: each names something vrrpd documents as not supported
# (e-mail, the deprecated SMTP `host` block) or is keepalived's own fix-up warning.
ALLOWED_WARNINGS = re.compile(
    r"e-mail alerts are not supported|SMTP_CHECK host block is "
    r"deprecated|protocol specified for fwmark|lvs_sync_daemon_interface|net_namespace|"
    r"duplicates the VIP|vrrp_sync_group|unknown keyword 'VI_\d' in vrrp_sync_group"
)


def sample_names() -> list[str]:
    """Every keepalived.conf sample that has a virtual_server, found on disk (maybe gzipped)."""
    if not SAMPLES.is_dir():
        return []
    names = []
    for path in sorted(SAMPLES.glob("keepalived.conf*")):
        name = path.name.removesuffix(".gz")
        if "virtual_server" in sample_text(name):
            names.append(name)
    return names


def sample_text(name: str) -> str:
    plain, packed = SAMPLES / name, SAMPLES / f"{name}.gz"
    if plain.exists():
        return plain.read_text()
    if packed.exists():
        return gzip.decompress(packed.read_bytes()).decode()
    pytest.skip(f"keepalived sample {name} is not installed")


def load(text: str, path: str = "/etc/keepalived/keepalived.conf") -> LoadResult:
    return check_config(path, MemorySource({path: text}), "high")


def load_sample(name: str) -> LoadResult:
    return load(sample_text(name), f"/samples/{name}")


def only_vs(text: str) -> VirtualServerSpec:
    result = load(text)
    assert result.config is not None and not result.errors, result.errors
    (vs,) = result.config.virtual_servers
    return vs


def messages(result: LoadResult) -> list[str]:
    return [str(p) for p in result.problems]


# -- every shipped LVS sample ------------------------------------------------------------------
def test_the_lvs_samples_are_found() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("keepalived samples are not installed")
    assert len(sample_names()) >= 15


@pytest.mark.parametrize("name", sample_names())
def test_every_lvs_sample_parses_without_errors(name: str) -> None:
    result = load_sample(name)
    assert result.config is not None
    assert not result.errors, result.errors
    assert result.config.virtual_servers
    unexpected = [p for p in result.warnings if not ALLOWED_WARNINGS.search(p.message)]
    assert not unexpected, unexpected
    problems = Problems()  # and the YAML conversion reads back to the same model
    again = parse_yaml_text(dump_yaml(result.config), "/k.yaml", problems)
    assert again is not None and not problems.has_errors, problems.items
    assert strip_locations(again) == strip_locations(result.config)


def test_sample_quorum() -> None:
    config = load_sample("keepalived.conf.quorum").config
    assert config is not None
    (vs,) = config.virtual_servers
    assert (vs.scheduler, vs.forwarding.method, vs.persistence_timeout_s) == ("wrr", "NAT", 900)
    assert (vs.alpha, vs.omega, vs.quorum, vs.hysteresis) == (True, True, 7, 2)
    assert vs.quorum_up is not None and vs.quorum_up.argv == ("/usr/local/sbin/quorum-up.sh",)
    assert len(vs.real_servers) == 10
    rs = vs.real_servers[0]
    assert (str(rs.address), rs.port, rs.weight) == ("10.0.0.1", 8080, 1)
    (check,) = rs.checkers
    assert (check.kind, str(check.connect_ip), check.connect_port) == (
        CheckerKind.TCP_CHECK, "10.0.0.1", 80)  # fmt: skip
    assert (check.connect_timeout_s, check.delay_loop_s, check.retry) == (3, 6, 1)
    assert check.alpha  # the virtual server's alpha reaches its checkers


def test_sample_virtual_server_group() -> None:
    config = load_sample("keepalived.conf.virtual_server_group").config
    assert config is not None
    (group,) = config.virtual_server_groups
    assert group.name == "VSG_1"
    spans = [(str(e.first), str(e.last), e.port, e.fwmark) for e in group.entries]
    assert spans == [
        ("10.0.0.1", "10.0.0.1", 8080, None),
        ("10.0.0.2", "10.0.0.2", 80, None),
        ("192.168.200.1", "192.168.200.1", 1358, None),
        ("192.168.200.3", "192.168.200.10", 80, None),
        ("None", "None", 0, 1),
        ("None", "None", 0, 2),
    ]
    (vs,) = config.virtual_servers
    assert vs.group == "VSG_1" and vs_label(vs) == "[VSG_1]:0"


def test_sample_status_code_and_digest() -> None:
    config = load_sample("keepalived.conf.status_code").config
    assert config is not None
    check = config.virtual_servers[0].real_servers[0].checkers[0]
    assert check.kind is CheckerKind.SSL_GET and isinstance(check.params, HttpParams)
    first, second = check.params.urls
    assert first.status_codes == ((200, 299), (400, 499), (503, 503), (505, 505))
    assert first.digest is None and first.status_ok(404) and not first.status_ok(502)
    assert second.digest == "9b3a0c85a887a256d6939da88aabd8cd"
    assert second.status_codes == ((200, 200),)
    assert check.retry == 3 and check.delay_before_retry_s == 3


def test_sample_virtualhost_reaches_every_url() -> None:
    config = load_sample("keepalived.conf.virtualhost").config
    assert config is not None
    params = config.virtual_servers[0].real_servers[0].checkers[0].params
    assert isinstance(params, HttpParams)
    assert [u.virtualhost for u in params.urls] == ["www.firewall.loc", "www.firewall.loc"]


def test_sample_misc_check_arguments() -> None:
    config = load_sample("keepalived.conf.misc_check_arg").config
    assert config is not None
    check = config.virtual_servers[0].real_servers[0].checkers[0]
    assert isinstance(check.params, MiscParams)
    assert check.params.command.argv == ("/usr/local/bin/script.sh", "arg1", "arg2")
    # misc_timeout defaults to the virtual server's delay_loop; MISC_CHECK retries 0 times
    assert (check.params.timeout_s, check.retry, check.params.dynamic) == (6, 0, False)
    assert check.connect_ip is None and check.connect_port is None


def test_sample_smtp_hosts_become_checkers() -> None:
    result = load_sample("keepalived.conf.SMTP_CHECK")
    assert result.config is not None
    first, second, third = result.config.virtual_servers[0].real_servers
    assert len(first.checkers) == 1 and len(second.checkers) == 4  # itself + 3 host blocks
    assert [str(c.connect_ip) for c in second.checkers] == [
        "172.16.1.11", "172.16.1.11", "192.168.155.10", "64.233.167.99"]  # fmt: skip
    assert [(c.connect_port, str(c.bindto)) for c in third.checkers][1:] == [
        (25, "172.16.1.2"), (25, "192.168.155.2"), (587, "None")]  # fmt: skip
    params = first.checkers[0].params
    assert isinstance(params, SmtpParams) and params.helo_name == "foo.bar.com"
    host = [p for p in result.warnings if "host block" in p.message]
    assert len(host) == 6 and host[0].location.line == 64


def test_sample_ipv6_group_range_and_fwmark_port_less_real_servers() -> None:
    config = load_sample("keepalived.conf.IPv6").config
    assert config is not None
    (group,) = config.virtual_server_groups
    assert (str(group.entries[0].first), str(group.entries[0].last)) == ("ae00::2", "ae00::9")
    vs = config.virtual_servers[0]
    assert vs.family == 6 and vs_label(vs) == "[ae00::1]:tcp:80"
    assert rs_label(vs, vs.real_servers[0]) == "[ae00::10]:tcp:25"
    fwm = load_sample("keepalived.conf.fwmark").config
    assert fwm is not None
    vs = fwm.virtual_servers[0]
    assert vs_label(vs) == "FWM 1" and vs.real_servers[0].port == 0
    assert vs.real_servers[0].checkers[0].connect_port == 80


def test_sample_sorry_server_and_inhibit() -> None:
    config = load_sample("keepalived.conf.sample").config
    assert config is not None
    sorry = config.virtual_servers[0].sorry_server
    assert sorry is not None and (str(sorry.address), sorry.port) == ("192.168.200.200", 1358)
    inhibit = load_sample("keepalived.conf.inhibit").config
    assert inhibit is not None and inhibit.virtual_servers[0].real_servers[0].inhibit_on_failure


# -- defaults and inheritance -----------------------------------------------------------------
def test_defaults_follow_keepalived() -> None:
    result = load("""
virtual_server 192.0.2.10 80 {
    protocol TCP
    real_server 192.0.2.21 {
        TCP_CHECK { }
        HTTP_GET { url { path / } }
        DNS_CHECK { }
        MISC_CHECK { misc_path /bin/true }
        SMTP_CHECK { }
        PING_CHECK { }
    }
}
""")
    assert result.config is not None and not result.errors, result.errors
    vs = result.config.virtual_servers[0]
    assert (vs.scheduler, vs.forwarding.method, vs.protocol) == ("wlc", "NAT", "TCP")
    assert (vs.quorum, vs.hysteresis, vs.persistence_timeout_s) == (1, 0, None)
    assert [m for m in messages(result) if "no lvs_sched" in m or "no lvs_method" in m]
    rs = vs.real_servers[0]
    assert (rs.port, rs.weight, rs.forwarding.method) == (80, 1, LvsMethod.NAT)
    tcp, http, dns, misc, smtp, ping = rs.checkers
    assert (tcp.delay_loop_s, tcp.connect_timeout_s, tcp.retry, tcp.delay_before_retry_s) == (
        60, 5, 1, 1)  # fmt: skip
    assert tcp.warmup_s == 60 and not tcp.alpha
    assert (http.retry, http.delay_before_retry_s) == (1, 3)
    assert isinstance(http.params, HttpParams) and http.params.http_protocol == "1.0"
    assert http.params.urls[0].status_codes == ((200, 299),)
    assert (dns.retry, dns.delay_before_retry_s) == (3, 60)
    assert dns.params == DnsParams("SOA", ".")
    assert misc.retry == 0 and isinstance(misc.params, MiscParams)
    assert misc.params.timeout_s == 60
    assert smtp.params == SmtpParams("smtpchecker.keepalived.org")
    assert ping.connect_port is None and str(ping.connect_ip) == "192.0.2.21"


def test_inheritance_virtual_server_then_real_server_then_checker() -> None:
    vs = only_vs("""
virtual_server 192.0.2.10 80 {
    protocol TCP
    lvs_sched rr
    lb_kind DR
    delay_loop 10
    connect_timeout 2
    retry 4
    delay_before_retry 0.5
    alpha
    inhibit_on_failure
    virtualhost vs.example
    real_server 192.0.2.21 8080 {
        weight 5
        connect_timeout 1.5
        virtualhost rs.example
        HTTP_GET {
            warmup 0
            url { path /a }
            url {
                path /b
                virtualhost url.example
            }
        }
        TCP_CHECK {
            retry 0
            alpha off
        }
    }
}
""")
    rs = vs.real_servers[0]
    assert rs.forwarding.method is LvsMethod.DR and rs.inhibit_on_failure and rs.weight == 5
    http, tcp = rs.checkers
    assert (http.delay_loop_s, http.connect_timeout_s, http.retry) == (10, 1.5, 4)
    assert (http.delay_before_retry_s, http.warmup_s, http.alpha) == (0.5, 0, True)
    assert isinstance(http.params, HttpParams)
    assert [u.virtualhost for u in http.params.urls] == ["rs.example", "url.example"]
    assert (tcp.retry, tcp.alpha, tcp.warmup_s, tcp.connect_port) == (0, False, 10, 8080)


def test_persistence_forwarding_and_flags() -> None:
    vs = only_vs("""
virtual_server 192.0.2.10 0 {
    protocol UDP
    lvs_sched sh
    sh-port
    flag-1
    ops
    lvs_method TUN type gue port 6080 csum
    persistence_timeout
    persistence_granularity 255.255.255.0
    sorry_server 192.0.2.99
    sorry_server_inhibit
    real_server 192.0.2.21 53 { weight 0 }
}
""")
    assert vs.persistence_timeout_s == 360 and vs.persistence_granularity == "255.255.255.0"
    assert vs.sched_flags == ("sh-port", "flag-1") and vs.ops and vs.protocol is LvsProtocol.UDP
    f = vs.forwarding
    assert (f.method, f.tunnel_type, f.tunnel_port, f.tunnel_csum) == ("TUN", "gue", 6080, "csum")
    assert vs.sorry_server is not None and vs.sorry_server.inhibit and vs.sorry_server.port == 0
    assert vs.real_servers[0].forwarding == f


def test_keepalived_fixups_warn() -> None:
    result = load("""
virtual_server 192.0.2.10 {
    protocol TCP
    lvs_sched rr
    lvs_method NAT
    quorum 5
    hysteresis 9
    ops
    real_server 192.0.2.21 80 { weight 3 }
}
virtual_server 192.0.2.11 80 {
    protocol TCP
}
virtual_server fwmark 7 {
    ha_suspend
    lvs_sched rr
    lvs_method DR
    real_server 192.0.2.21 80 { }
}
""")
    assert result.config is not None and not result.errors, result.errors
    first, fwm = result.config.virtual_servers
    assert first.persistence_timeout_s == 360 and (first.quorum, first.hysteresis) == (3, 2)
    assert not first.ops and not fwm.ha_suspend
    text = "\n".join(messages(result))
    assert "zero port only valid for persistent services" in text
    assert "quorum 5 for [192.0.2.10]:tcp:0 exceeds total weight of real servers 3" in text
    assert "hysteresis 9 >= quorum 3; setting hysteresis to 2" in text
    assert "one packet scheduling (ops) requires UDP" in text
    assert "[192.0.2.11]:tcp:80 has no real servers - ignoring" in text
    assert "cannot use ha_suspend with fwmarks" in text


# -- errors: located, with hints, all in one pass --------------------------------------------
BROKEN = """\
virtual_server_group web_a {
    192.0.2.5-3 80
    fwmark 3 inet7
}
virtual_server group web_b {
    protocol TCP
    real_server 192.0.2.21 80 { }
}
virtual_server 192.0.2.10 80 {
    lb_algoo rr
    lvs_sched fastest
    lvs_method FULLNAT
    real_server 192.0.2.21 80 {
        HTTP_GET {
            url {
                path /
                digest 12z
                status_code 299-200
            }
            http_protocol 2
        }
        MISC_CHECK { misc_timeout 3 }
        DNS_CHECK { type AXFR }
    }
    real_server 192.0.2.21 80 { }
    real_server 2001:db8::21 80 { }
}
virtual_server fwmark 9 {
    real_server 192.0.2.30 { TCP_CHECK { } }
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    real_server 192.0.2.22 80 { }
}
"""


def test_errors_are_located_and_collected() -> None:
    result = load(BROKEN, "/k.conf")
    got = [(p.location.line, p.location.col, p.severity.value, p.message, p.hint)
           for p in result.problems]  # fmt: skip
    expected = [
        (2, 5, "error", "virtual_server_group range '192.0.2.5-3' is empty or mixes families", ""),
        (3, 14, "error", "unknown address family 'inet7'", "use inet or inet6"),
        (5, 22, "error", "virtual_server_group 'web_b' is not defined",
         "did you mean 'web_a'?"),
        (10, 5, "warning", "unknown keyword 'lb_algoo' in virtual_server (ignored)",
         "did you mean 'lb_algo'?"),
        (11, 15, "error", "unknown lvs_sched 'fastest'",
         "use one of rr, wrr, lc, wlc, lblc, sh, mh, dh, fo, ovf, lblcr, sed, nq, twos"),
        (12, 16, "error", "lvs_method FULLNAT is not supported",
         "keepalived and mainline IPVS have NAT, DR and TUN only"),
    ]  # fmt: skip
    assert got[: len(expected)] == expected
    rest = [(line, message) for line, _, _, message, _ in got[len(expected) :]]
    assert rest == [
        (9, "virtual server [192.0.2.10]:tcp:80: no protocol set (keepalived would default "
            "to UDP)"),
        (17, "digest '12z' is not an MD5 hex digest"),
        (18, "status_code range 299-200 is empty"),
        (20, "unknown http_protocol '2'"),
        (22, "MISC_CHECK has no misc_path"),
        (23, "unknown DNS_CHECK type 'AXFR'"),
        (25, "real_server 192.0.2.21 port 80 is defined twice in this virtual_server"),
        (26, "real_server 2001:db8::21 is not IPv4 like its virtual server"),
        (28, "virtual server FWM 9: no lvs_sched set, using the default wlc"),
        (28, "virtual server FWM 9: no lvs_method set, using the default NAT"),
        (29, "TCP_CHECK for real server 192.0.2.30 has no port"),
        (31, "virtual server [192.0.2.10]:tcp:80: no lvs_sched set, using the default wlc"),
        (31, "virtual server [192.0.2.10]:tcp:80: no lvs_method set, using the default NAT"),
        (31, "virtual_server [192.0.2.10]:tcp:80 is defined twice"),
    ]  # fmt: skip
    assert result.exit_code == 5


def test_each_head_form_is_checked() -> None:
    result = load(
        "virtual_server { }\nvirtual_server fwmark 0 { }\nvirtual_server 192.0.2.1 x { }\n"
    )
    assert [(p.location.line, p.message) for p in result.errors] == [
        (1, "'virtual_server' needs an address, fwmark or group"),
        (2, "fwmark 0 is out of range"),
        (3, "virtual_server port 'x' is not an integer"),
    ]


def test_checker_keywords_are_per_type() -> None:
    result = load("""
virtual_server 192.0.2.10 80 {
    protocol TCP
    lvs_sched rr
    lvs_method NAT
    real_server 192.0.2.21 80 {
        MISC_CHECK {
            misc_path /bin/true
            connect_port 80
        }
        HTTP_GET {
            url {
                path /
                helo_name x
            }
            enable_sni
        }
        BFD_CHECK {
            name bfd1
        }
    }
}
""")
    assert not result.errors, result.errors
    warnings = [(p.location.line, p.message) for p in result.warnings]
    assert warnings == [
        (9, "unknown keyword 'connect_port' in MISC_CHECK (ignored)"),
        (14, "unknown keyword 'helo_name' in url (ignored)"),
        (16, "unknown keyword 'enable_sni' in HTTP_GET (ignored)"),
        (18, "BFD_CHECK is not supported by vrrpd: it needs keepalived's separate BFD "
            "process; the real server is not checked by it (ignored)"),
    ]  # fmt: skip


# -- YAML ---------------------------------------------------------------------------------------
YAML_DOC = """
virtual_server_groups:
  web: ["192.0.2.10 80", "fwmark 5"]
virtual_servers:
  - address: 192.0.2.10
    port: 80
    protocol: TCP
    lvs_sched: rr
    lvs_method: DR
    persistence_timeout:
    delay_loop_s: 2
    sorry_server: 192.0.2.99 80
    real_servers:
      - address: 192.0.2.21
        weight: 3
        notify_down: [/usr/local/bin/rs-down, web]
        checkers:
          - type: HTTP_GET
            url: [{path: /health, status_code: [200, 204-206]}]
          - {type: MISC_CHECK, misc_path: /bin/check --fast, misc_dynamic: true}
  - group: web
    protocol: TCP
    lvs_sched: wlc
    lvs_method: NAT
    real_servers: [{address: 192.0.2.22, port: 80}]
"""
CONF_DOC = """
virtual_server_group web {
    192.0.2.10 80
    fwmark 5
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    lvs_sched rr
    lvs_method DR
    persistence_timeout
    delay_loop 2
    sorry_server 192.0.2.99 80
    real_server 192.0.2.21 {
        weight 3
        notify_down "/usr/local/bin/rs-down web"
        HTTP_GET {
            url {
                path /health
                status_code 200 204-206
            }
        }
        MISC_CHECK {
            misc_path "/bin/check --fast"
            misc_dynamic
        }
    }
}
virtual_server group web {
    protocol TCP
    lvs_sched wlc
    lvs_method NAT
    real_server 192.0.2.22 80 { }
}
"""


def test_yaml_gives_the_same_model_as_keepalived_conf() -> None:
    problems = Problems()
    from_yaml = parse_yaml_text(YAML_DOC, "/c.yaml", problems)
    assert from_yaml is not None and not problems.items, problems.items
    conf = load(CONF_DOC)
    assert conf.config is not None and not conf.problems, conf.problems
    assert strip_locations(from_yaml.virtual_servers) == strip_locations(
        conf.config.virtual_servers
    )
    http = from_yaml.virtual_servers[0].real_servers[0].checkers[0]
    assert isinstance(http.params, HttpParams)
    assert http.params.urls[0].status_codes == ((200, 200), (204, 206))
    assert http.delay_loop_s == 2 and from_yaml.virtual_servers[0].persistence_timeout_s == 360


def test_yaml_problems_are_located() -> None:
    problems = Problems()
    parse_yaml_text(
        """
virtual_servers:
  - port: 80
  - address: 192.0.2.10
    port: 80
    protocol: TCP
    real_servers:
      - address: 192.0.2.21
        checkers:
          - type: TCP_CHEK
          - type: TCP_CHECK
            conect_port: 81
""",
        "/c.yaml",
        problems,
    )
    got = [(p.location.line, p.location.col, p.severity, p.message, p.hint)
           for p in problems.items]  # fmt: skip
    assert got[:3] == [
        (3, 5, Severity.ERROR, "a virtual_server needs 'address' (or fwmark/group)", ""),
        (10, 13, Severity.ERROR, "a checker needs 'type' (one of TCP_CHECK, PING_CHECK, "
         "HTTP_GET, SSL_GET, DNS_CHECK, SMTP_CHECK, MISC_CHECK, UDP_CHECK, FILE_CHECK)",
         "did you mean 'TCP_CHECK'?"),
        (12, 13, Severity.WARNING, "unknown key 'conect_port' in TCP_CHECK (ignored)",
         "did you mean 'connect_port'?"),
    ]  # fmt: skip


def test_labels_are_keepalived_formats() -> None:
    vs = only_vs(
        "virtual_server 2001:db8::10 443 {\n protocol TCP\n lvs_sched rr\n lvs_method NAT\n"
        " real_server 2001:db8::21 8443 { }\n}\n"
    )
    assert vs_label(vs) == "[2001:db8::10]:tcp:443"
    assert rs_label(vs, vs.real_servers[0]) == "[2001:db8::21]:tcp:8443"
    assert vs.real_servers[0].address == ip_address("2001:db8::21")
