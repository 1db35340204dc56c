"""keepalived `global_defs { lvs_sync_daemon ... }` (man keepalived.conf): parsing and errors."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from cfghelp import load_text, messages

from vrrpd.config.dump import dump_yaml, strip_locations
from vrrpd.config.loader import check_config
from vrrpd.config.source import MemorySource

INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100
    }
}
"""


def conf(line: str) -> str:
    return f"global_defs {{\n    {line}\n}}\n{INSTANCE}"


def test_full_form() -> None:
    result = load_text(conf("lvs_sync_daemon eth1 inst VI_1 id 7 maxlen 1400 port 9000 "
                            "ttl 3 group 239.1.2.3"))  # fmt: skip
    assert result.config is not None, messages(result)
    syncd = result.config.global_defs.lvs_sync_daemon
    assert syncd is not None
    assert (syncd.interface, syncd.instance, syncd.sync_id) == ("eth1", "VI_1", 7)
    assert (syncd.maxlen, syncd.port, syncd.ttl) == (1400, 9000, 3)
    assert syncd.group == ip_address("239.1.2.3")
    assert (syncd.location.line, syncd.location.col) == (2, 5)


def test_short_forms() -> None:
    old = load_text(conf("lvs_sync_daemon eth1 VI_1"))  # `inst` omitted: keepalived's old form
    assert old.config is not None and old.config.global_defs.lvs_sync_daemon is not None
    assert old.config.global_defs.lvs_sync_daemon.instance == "VI_1"
    bare = load_text(conf("lvs_sync_daemon eth1 id 3"))
    assert bare.config is not None and bare.config.global_defs.lvs_sync_daemon is not None
    syncd = bare.config.global_defs.lvs_sync_daemon
    assert (syncd.instance, syncd.sync_id, syncd.port, syncd.group) == (None, 3, None, None)
    assert not [p for p in bare.problems if "lvs_sync_daemon" in str(p)]
    none = load_text(conf("router_id x"))
    assert none.config is not None and none.config.global_defs.lvs_sync_daemon is None


@pytest.mark.parametrize(
    ("line", "at", "text"),
    [
        ("lvs_sync_daemon eth1 VI_1 id 256", "256", "lvs_sync_daemon id 256 is out of range"),
        ("lvs_sync_daemon eth1 port x", " x", "lvs_sync_daemon port 'x' is not an integer"),
        ("lvs_sync_daemon eth1 group 192.0.2.1", "192", "192.0.2.1 is not a multicast address"),
        ("lvs_sync_daemon eth1 inst VI_1 colour red", "colour", "unknown lvs_sync_daemon option"),
        ("lvs_sync_daemon eth1 VI_1 ttl", "ttl", "lvs_sync_daemon 'ttl' needs a value"),
        ("lvs_sync_daemon", "lvs", "'lvs_sync_daemon' needs a value"),
    ],
)
def test_errors_name_file_line_col(line: str, at: str, text: str) -> None:
    """The error points at the offending word (line 2 of the file, 1-based columns)."""
    col = 4 + line.index(at.strip()) + 1
    result = load_text(conf(line))
    errors = [str(p) for p in result.errors]
    assert any(f"keepalived.conf:2:{col}" in e and text in e for e in errors), messages(result)


def test_unknown_instance_is_a_located_warning_with_a_suggestion() -> None:
    """keepalived -t says nothing and never starts the sync daemon; vrrpd -t tells."""
    result = load_text(conf("lvs_sync_daemon eth1 inst VI_2"))
    assert result.config is not None and not result.errors, messages(result)
    warnings = [str(p) for p in result.warnings if "lvs_sync_daemon" in str(p)]
    assert len(warnings) == 1, messages(result)
    assert "keepalived.conf:2:5" in warnings[0] and "no vrrp_instance VI_2" in warnings[0]
    assert "did you mean 'VI_1'?" in warnings[0]


def test_yaml_form_and_convert_round_trip() -> None:
    """The YAML `lvs_sync_daemon` takes keepalived's words; --convert-to-yaml writes them back."""
    line = "lvs_sync_daemon eth1 inst VI_1 id 7 maxlen 1400 port 9000 ttl 3 group 239.1.2.3"
    result = load_text(conf(f"{line}\n    lvs_notify_fifo /run/lvs.fifo root root"))
    assert result.config is not None, messages(result)
    text = dump_yaml(result.config)
    assert f"{line.replace(' ', ': ', 1)}\n" in text
    back = check_config("/etc/vrrpd.yaml", MemorySource({"/etc/vrrpd.yaml": text}), "node1")
    assert back.config is not None and not back.problems, messages(back)
    assert strip_locations(back.config) == strip_locations(result.config)
    assert back.config.global_defs.lvs_notify_fifo is not None
    assert back.config.global_defs.lvs_notify_fifo.user == "root"
