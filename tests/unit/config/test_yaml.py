"""The YAML front-end: same model as keepalived.conf; conversion round trips; docs examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfghelp import sample_text
from test_samples import LVS_ONLY, VRRP_SAMPLES

from vrrpd.config.diag import Problems
from vrrpd.config.dump import dump_json, dump_yaml, strip_locations
from vrrpd.config.loader import check_config
from vrrpd.config.source import MemorySource
from vrrpd.config.yamlconf import parse_yaml_text

DOCS = Path(__file__).parents[3] / "docs" / "configuration-yaml.md"
FULL_CONF = """
global_defs {
    router_id r1
    vrrp_version 3
    vrrp_garp_master_delay 2
    vrrp_garp_interval 0.001
    vrrp_notify_fifo /run/vrrp.fifo
    vrrp_notify_fifo_script "/usr/local/bin/reader -v" nobody
    script_user keepalived_script nogroup
    enable_script_security
    vrrp_check_unicast_src
    fifo_write_vrrp_states_on_reload
}
vrrp_script chk {
    script "/usr/bin/curl -sf 'http://localhost/ health'"
    interval 2
    weight -20 reverse
    fall 3
    user nobody
    init_fail
}
track_file tf {
    file /run/prio
    weight 5
    init_file 3 overwrite
}
vrrp_track_process haproxy {
    process haproxy -f /etc/haproxy.cfg
    quorum 2
    quorum_max 4
    delay 1.5
    weight 10
}
vrrp_instance V6 {
    interface eth0
    virtual_router_id 7
    priority 200
    advert_int 0.25
    nopreempt
    no_accept
    dont_track_primary
    use_vmac vrrp6 00:00:5e:00:02:07
    vmac_xmit_base
    unicast_src_ip 2001:db8::10
    unicast_peer {
        2001:db8::11 min_ttl 250
        2001:db8::12
    }
    virtual_ipaddress {
        2001:db8::100
        2001:db8::200/64 dev eth1 -nodad preferred_lft forever no_track
    }
    virtual_ipaddress_excluded {
        192.0.2.50/24 brd + scope link label eth0:x
    }
    virtual_routes {
        2001:db8:1::/48 via 2001:db8::1 dev eth0 metric 10 no_track
    }
    virtual_rules {
        from 2001:db8::/32 table 100 preference 1000
    }
    track_script {
        chk weight 5
    }
    track_file {
        tf
    }
    track_process {
        haproxy reverse
    }
    track_interface {
        eth1 weight -10
    }
    garp_master_repeat 2
    notify_master "/bin/notify master" root
    notify /bin/notify
    notify_priority_changes
}
vrrp_instance V4 {
    interface eth0
    virtual_router_id 8
    version 2
    state MASTER
    authentication {
        auth_type PASS
        auth_pass secret12345
    }
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_sync_group G {
    group {
        V6
        V4
    }
    track_script {
        chk
    }
    notify_backup "/bin/echo backup"
    sync_group_tracking_weight
}
static_ipaddress {
    198.51.100.5/24
}
static_routes {
    blackhole 203.0.113.0/24
}
static_rules {
    to 203.0.113.0/24 table 5
}
"""


def roundtrip(text: str, path: str = "/k.conf") -> None:
    result = check_config(path, MemorySource({path: text}), "high")
    assert result.config is not None
    problems = Problems()
    again = parse_yaml_text(dump_yaml(result.config), "/k.yaml", problems)
    assert again is not None and not problems.has_errors, problems.items
    assert strip_locations(again) == strip_locations(result.config)


@pytest.mark.parametrize("name", VRRP_SAMPLES + LVS_ONLY)
def test_sample_to_yaml_round_trips(name: str) -> None:
    roundtrip(sample_text(name))


def test_full_feature_config_round_trips() -> None:
    result = check_config("/k.conf", MemorySource({"/k.conf": FULL_CONF}), "n")
    assert not result.errors, result.errors
    config = result.config
    assert config is not None
    v6 = config.instances[0]
    assert (v6.family, v6.version, v6.advert_int_cs, v6.preempt, v6.accept) == (
        6,
        3,
        25,
        False,
        False,
    )
    assert v6.vmac is not None and v6.vmac.xmit_base and v6.check_unicast_src
    assert v6.vips[0].preferred_lft == 0 and v6.vips[1].preferred_lft is None
    assert v6.vips[1].dad and not v6.vips[1].track
    assert v6.mcast_group is None and v6.garp.master_delay_s == 2 and v6.garp.master_repeat == 2
    assert v6.garp.interval_s == 0.001
    assert config.scripts[0].argv == ("/usr/bin/curl", "-sf", "http://localhost/ health")
    assert config.global_defs.vrrp_notify_fifo is not None
    assert config.global_defs.vrrp_notify_fifo.script is not None
    assert config.global_defs.fifo_write_states_on_reload
    assert config.track_processes[0].args == ("-f", "/etc/haproxy.cfg")
    assert config.instances[1].auth is not None
    assert config.instances[1].auth.password == b"secret12"
    roundtrip(FULL_CONF)


def test_yaml_positive_booleans_and_units() -> None:
    text = """
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    advert_int_s: 2
    preempt: false
    accept: false
    track_primary: false
    virtual_ipaddress:
      - 192.0.2.1/24 dev eth0
      - {address: 192.0.2.2, label: "eth0:1", track: false}
"""
    problems = Problems()
    config = parse_yaml_text(text, "/c.yaml", problems)
    assert config is not None and not problems.items
    inst = config.instances[0]
    assert (inst.advert_int_cs, inst.preempt, inst.accept, inst.track_primary) == (
        200,
        False,
        False,
        False,
    )
    assert inst.vips[1].label == "eth0:1" and not inst.vips[1].track


def test_yaml_problems_are_located() -> None:
    problems = Problems()
    parse_yaml_text("vrrp_instances:\n  VI_1:\n    priority: x\n", "/c.yaml", problems)
    assert [str(p) for p in problems.items] == [
        "/c.yaml:3:15: error: priority 'x' is not an integer",
        "/c.yaml:2:3: error: vrrp_instance VI_1 has no virtual_router_id"
        " (hint: add: virtual_router_id <1..255>)",
    ]


def docs_examples() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.DOTALL) if DOCS.exists() else []


def test_docs_have_examples() -> None:
    assert len(docs_examples()) >= 10


@pytest.mark.parametrize("index", range(len(docs_examples())))
def test_docs_examples_load_without_errors(index: int) -> None:
    problems = Problems()
    config = parse_yaml_text(docs_examples()[index], "/doc.yaml", problems)
    assert config is not None and not problems.has_errors, problems.items
    assert dump_json(config)
