"""keepalived.conf lexical rules: comments, quoting, escapes, braces, include, @ID, macros, ~SEQ."""

from __future__ import annotations

from cfghelp import load_text, messages

from vrrpd.config.diag import Problems
from vrrpd.config.lexer import build_tree, tokenize
from vrrpd.config.preprocess import brace_expand
from vrrpd.config.source import MemorySource

MINIMAL = "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n{body}\n}}\n"


def words(text: str) -> list[str]:
    return [t.text for t in tokenize(text, "f", 1, Problems())]


def test_comments_anywhere_but_not_inside_quotes() -> None:
    assert words("priority 100 # comment") == ["priority", "100"]
    assert words("priority 100 ! comment") == ["priority", "100"]
    assert words('auth_pass "a#b!c" # x') == ["auth_pass", "a#b!c"]


def test_quotes_keep_spaces_and_decode_escapes() -> None:
    assert words('notify "/bin/x  a b"') == ["notify", "/bin/x  a b"]
    assert words(r'x "a\tb\x41\101\cA"') == ["x", "a\tbAA\x01"]
    assert words("x 'a\\tb'") == ["x", "a\\tb"]


def test_braces_split_and_columns() -> None:
    toks = tokenize("  group {VI_1}", "f", 3, Problems())
    assert [(t.text, t.loc.col) for t in toks] == [("group", 3), ("{", 9), ("VI_1", 10), ("}", 14)]


def test_build_tree_one_line_and_next_line_brace() -> None:
    p = Problems()
    lines = [tokenize(s, "f", i, p) for i, s in enumerate(["a x {", "b", "}", "c", "{", "d }"], 1)]
    tree = build_tree(lines, p)
    assert [(n.name, [a.text for a in n.args]) for n in tree] == [("a", ["x"]), ("c", [])]
    assert tree[1].children is not None and tree[1].children[0].name == "d"
    assert not p.items


def test_brace_expansion() -> None:
    assert brace_expand("/a/{b,c{d,e}}.conf") == ["/a/b.conf", "/a/cd.conf", "/a/ce.conf"]
    assert brace_expand("/a/{b}.conf") == ["/a/{b}.conf"]


def test_include_relative_glob_and_braces() -> None:
    files = {
        "/etc/keepalived/keepalived.conf": "include conf.d/*.conf\ninclude {x,y}.inc\n",
        "/etc/keepalived/conf.d/a.conf": MINIMAL.format(
            body=" virtual_ipaddress {\n 192.0.2.1\n }"
        ),
        "/etc/keepalived/x.inc": "vrrp_script s1 {\n script /bin/true\n}\n",
        "/etc/keepalived/y.inc": "vrrp_script s2 {\n script /bin/false\n}\n",
    }
    from vrrpd.config.loader import check_config

    result = check_config("/etc/keepalived/keepalived.conf", MemorySource(files), "n")
    assert result.config is not None and not result.problems
    assert [s.name for s in result.config.scripts] == ["s1", "s2"]
    assert result.config.instances[0].location.path == "/etc/keepalived/conf.d/a.conf"
    assert len(result.config.source_files) == 4


def test_include_without_match_warns() -> None:
    result = load_text("include missing/*.conf\n")
    assert messages(result) == [
        "/etc/keepalived/keepalived.conf:1:9: warning: include 'missing/*.conf' matched no files"
    ]


def test_conditional_lines_and_negation() -> None:
    body = "@node1 priority 150\n@^node1 priority 50\n virtual_ipaddress {\n 192.0.2.1\n }"
    result = load_text(MINIMAL.format(body=body))
    assert result.config is not None and result.config.instances[0].priority == 150


def test_macros_plain_braced_multiline_and_undefined() -> None:
    text = (
        "$IF=eth0\n$VIPS= \\\n virtual_ipaddress { \\\n 192.0.2.1 \\\n }\n"
        "vrrp_instance VI_1 {\n interface ${IF}\n virtual_router_id 1\n $VIPS\n"
        ' notify_master "/bin/echo $UNDEFINED"\n}\n'
    )
    result = load_text(text)
    assert result.config is not None, messages(result)
    inst = result.config.instances[0]
    assert inst.interface == "eth0" and str(inst.vips[0].address) == "192.0.2.1/32"
    assert inst.notify.master is not None and inst.notify.master.argv == ("/bin/echo", "$UNDEFINED")


def test_sequences() -> None:
    body = " virtual_ipaddress {\n ~SEQ(i, 1, 3) 192.0.2.$i\n ~SEQx(j, 10, 16, 42) 2001:db8::$j\n }"
    result = load_text(MINIMAL.format(body=body))
    assert result.config is not None
    inst = result.config.instances[0]
    assert [str(v.ip) for v in inst.vips] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert [str(v.ip) for v in inst.excluded_vips] == []
    assert "is not IPv4" in messages(result)[0]


def test_binary_and_non_utf8_files_are_fatal_problems() -> None:
    from vrrpd.config.loader import check_config

    for data in (b"\x00\x01\x02", b"\xff\xfe vrrp"):
        src = MemorySource({"/k.conf": data, "/k.yaml": data})
        for path in ("/k.conf", "/k.yaml"):
            result = check_config(path, src, "n")
            assert result.exit_code == 4 and result.config is None
            assert result.problems[0].location.path == path
