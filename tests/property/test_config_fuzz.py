"""hypothesis: the config front-ends never raise anything but ConfigError on arbitrary text,
and keepalived.conf -> YAML -> model round trips are equal for generated instances."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrrpd.config.diag import Problems
from vrrpd.config.dump import dump_yaml, strip_locations
from vrrpd.config.lexer import build_tree, tokenize
from vrrpd.config.loader import check_config, load_config
from vrrpd.config.source import MemorySource
from vrrpd.config.yamlconf import parse_yaml_text
from vrrpd.errors import ConfigError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = st.sampled_from([
    "vrrp_instance", "VI_1", "{", "}", "interface", "eth0", "virtual_router_id", "51", "300",
    "priority", "state", "MASTER", "virtual_ipaddress", "192.0.2.1/24", "2001:db8::1", "dev",
    "advert_int", "0.5", "version", "3", "nopreempt", "track_script", "vrrp_script", "script",
    '"/bin/true"', "include", "*.conf", "@node1", "$X=1", "${X}", "$X", "~SEQ(i,1,3)", "#", "!",
    "unicast_peer", "authentication", "auth_type", "PASS", "global_defs", "vrrp_strict", "\n",
    "virtual_routes", "via", "blackhole", "vrrp_sync_group", "group", "'", '"', "\\",
])  # fmt: skip
CONFIGISH = st.lists(WORDS, max_size=60).map(" ".join)
ANY_TEXT = st.text(max_size=300)


def _load_both(text: str) -> None:
    files = {"/k.conf": text, "/k.yaml": text, "/etc/x.conf": text}
    for path in ("/k.conf", "/k.yaml"):
        result = check_config(path, MemorySource(files), "node1")
        assert result.exit_code in (0, 4, 5)
        with contextlib.suppress(ConfigError):
            load_config(path, MemorySource(files), "node1")


@FAST
@given(st.one_of(ANY_TEXT, CONFIGISH))
def test_front_ends_never_raise_but_config_error(text: str) -> None:
    _load_both(text)


@FAST
@given(ANY_TEXT)
def test_lexer_is_total(text: str) -> None:
    problems = Problems()
    lines = [tokenize(line, "f", i, problems) for i, line in enumerate(text.splitlines(), 1)]
    build_tree(lines, problems)


@st.composite
def instance_conf(draw: st.DrawFn) -> str:
    vrid = draw(st.integers(1, 255))
    v6 = draw(st.booleans())
    vips = draw(st.lists(st.integers(1, 250), min_size=1, max_size=4, unique=True))
    lines = [f"vrrp_instance VI_{vrid} {{", " interface eth0", f" virtual_router_id {vrid}"]
    if draw(st.booleans()):
        lines.append(f" priority {draw(st.integers(1, 255))}")
    lines.append(f" state {draw(st.sampled_from(['MASTER', 'BACKUP']))}")
    lines.append(f" advert_int {draw(st.sampled_from(['1', '0.5', '2', '0.03']))}")
    for flag in ("nopreempt", "no_accept", "dont_track_primary", "use_vmac", "smtp_alert"):
        if draw(st.booleans()):
            lines.append(f" {flag}")
    lines.append(" virtual_ipaddress {")
    lines += [f"  2001:db8::{v:x}" if v6 else f"  192.0.2.{v}/24" for v in vips]
    lines.append(" }")
    if draw(st.booleans()):
        lines += [" unicast_peer {", "  2001:db8::ff" if v6 else "  192.0.2.254", " }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


@FAST
@given(instance_conf())
def test_keepalived_to_yaml_round_trips(text: str) -> None:
    result = check_config("/k.conf", MemorySource({"/k.conf": text}), "n")
    assert result.config is not None and not result.errors, result.errors
    problems = Problems()
    again = parse_yaml_text(dump_yaml(result.config), "/k.yaml", problems)
    assert again is not None and not problems.has_errors, problems.items
    assert strip_locations(again) == strip_locations(result.config)
