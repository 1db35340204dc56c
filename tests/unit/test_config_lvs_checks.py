"""keepalived 2.2's url regex keywords, the global `SSL {}` block, UDP_CHECK and FILE_CHECK in
both front-ends: defaults, PCRE2 option names mapped onto Python's re, errors as file:line:col,
and the YAML conversion giving back the same model."""

from __future__ import annotations

import re

from vrrpd.config.diag import Problems
from vrrpd.config.dump import dump_yaml, strip_locations
from vrrpd.config.loader import LoadResult, check_config
from vrrpd.config.lvsmodel import (
    CheckerKind,
    CheckerSpec,
    FileCheckParams,
    HttpParams,
    RegexSpec,
    UdpParams,
    UrlSpec,
)
from vrrpd.config.lvsurl import compile_regex, regex_flags
from vrrpd.config.source import MemorySource
from vrrpd.config.yamlconf import parse_yaml_text

PATH = "/k.conf"
HEAD = "virtual_server 192.0.2.10 80 {\n    protocol TCP\n    lvs_sched rr\n    lvs_method DR\n"


def load(body: str, before: str = "", files: dict[str, str] | None = None) -> LoadResult:
    """`before` (top-level blocks) and a virtual server whose body is `body`, in /k.conf."""
    text = f"{before}{HEAD}{body}}}\n"
    return check_config(PATH, MemorySource({PATH: text, **(files or {})}))


def checkers(result: LoadResult) -> list[CheckerSpec]:
    assert result.config is not None and not result.errors, result.errors
    return [c for rs in result.config.virtual_servers[0].real_servers for c in rs.checkers]


def located(result: LoadResult) -> list[tuple[int, int, str, str]]:
    return [(p.location.line, p.location.col, p.severity.value, p.message) for p in result.problems]


def url_of(result: LoadResult) -> UrlSpec:
    params = checkers(result)[0].params
    assert isinstance(params, HttpParams)
    return params.urls[0]


def http(url_body: str, kind: str = "HTTP_GET") -> str:
    return f"real_server 192.0.2.21 80 {{\n {kind} {{\n url {{\n path /\n{url_body} }}\n }}\n }}\n"


# -- url regex ------------------------------------------------------------------------------------
def test_regex_defaults_and_every_keyword() -> None:
    assert url_of(load(http("regex ok\n"))).regex == RegexSpec("ok")
    url = url_of(load(http(
        "regex 'status: (up|ready)'\nregex_no_match\nregex_options caseless multiline\n"
        "regex_min_offset 4\nregex_max_offset 100\nregex_stack 32768 524288\n"
    )))  # fmt: skip
    assert url.regex == RegexSpec(
        "status: (up|ready)", True, ("caseless", "multiline"), 4, 100, (32768, 524288)
    )
    # several words are one pattern, as keepalived joins them
    assert url_of(load(http("regex service is up\n"))).regex == RegexSpec("service is up")


def test_regex_options_map_onto_re_flags() -> None:
    assert regex_flags(()) == re.ASCII  # PCRE2 without ucp: \w, \d and caseless are ASCII
    got = regex_flags(("caseless", "multiline", "dotall", "extended", "ucp"))
    assert got == re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE
    # options that cannot change whether a match exists are accepted without a flag
    assert regex_flags(("ungreedy", "no_start_optimize", "firstline", "utf")) == re.ASCII
    spaced = compile_regex(RegexSpec("up  # a comment", options=("extended",)))
    assert spaced.search("status up") is not None
    # without utf the pattern is bytes, as PCRE2 sees it: é is two characters
    assert compile_regex(RegexSpec("^.{2}$")).search("\u00c3\u00a9") is not None
    assert compile_regex(RegexSpec("^.$", options=("utf",))).search("é") is not None


def test_regex_errors_are_located() -> None:
    result = load(http(
        "regex (?<name>x)\nregex_options caseles dollar_endonly\nregex_min_offset 9\n"
        "regex_max_offset 3\nregex_stack 10 5\n"
    ))  # fmt: skip
    assert [(line, col, sev, msg) for line, col, sev, msg in located(result)] == [
        (10, 15, "error", "unknown regex_options 'caseles'"),
        (10, 23, "error", "regex_options 'dollar_endonly' cannot be mapped onto Python's re"),
        (13, 16, "error", "regex_stack max 5 is below its start 10"),
        (9, 7, "error", "regex_max_offset 3 is below regex_min_offset 9"),
    ]
    hints = [p.hint for p in result.problems]
    assert hints[0] == "did you mean 'caseless'?" and "\\Z" in hints[1]
    bad = load(http("regex 'a(b'\n"))
    assert located(bad) == [
        (9, 7, "error", "regex 'a(b' is not valid for Python's re: missing ), unterminated "
         "subpattern at position 1"),
    ]  # fmt: skip
    lonely = load(http("regex_no_match\n"))
    assert located(lonely) == [(7, 2, "warning", "url has 'regex_no_match' but no 'regex' "
                                "(ignored)")]  # fmt: skip


# -- the SSL block --------------------------------------------------------------------------------
SSL_BLOCK = """SSL {
    password secret
    ca /etc/ssl/ca.pem
    certificate /etc/ssl/client.pem
    key /etc/ssl/client.key
}
"""
SSL_FILES = {f"/etc/ssl/{n}": "x" for n in ("ca.pem", "client.pem", "client.key")}


def test_ssl_block_reaches_every_ssl_get_only() -> None:
    body = http("", "SSL_GET") + http("", "HTTP_GET").replace("80 {", "81 {", 1)
    result = load(body, SSL_BLOCK, SSL_FILES)
    ssl_get, http_get = (c.params for c in checkers(result))
    assert isinstance(ssl_get, HttpParams) and isinstance(http_get, HttpParams)
    assert ssl_get.ssl is not None and http_get.ssl is None
    ssl = ssl_get.ssl
    assert (ssl.password, ssl.ca, ssl.certificate, ssl.key) == (
        "secret", "/etc/ssl/ca.pem", "/etc/ssl/client.pem", "/etc/ssl/client.key")  # fmt: skip
    assert [(kw, loc.line) for kw, loc in ssl.locations] == [
        ("password", 2), ("ca", 3), ("certificate", 4), ("key", 5)]  # fmt: skip
    assert not result.problems
    # without the block (or an empty one) SSL_GET uses keepalived's generated context
    for before in ("", "SSL {\n}\n"):
        params = checkers(load(http("", "SSL_GET"), before))[0].params
        assert isinstance(params, HttpParams) and params.ssl is None


def test_ssl_missing_files_are_errors_at_their_keyword() -> None:
    result = load(http("", "SSL_GET"), SSL_BLOCK, {"/etc/ssl/client.pem": "x"})
    assert located(result) == [
        (3, 5, "error", "SSL ca file /etc/ssl/ca.pem does not exist"),
        (5, 5, "error", "SSL key file /etc/ssl/client.key does not exist"),
    ]
    assert result.exit_code == 5
    # nothing uses the block: keepalived does not set up its context, nor look for the files
    assert not load(http(""), SSL_BLOCK).errors


def test_ssl_block_mistakes() -> None:
    text = "SSL {\n    key /k.pem\n    password pw\n    certficate /c.pem\n}\n"
    result = load(http("", "SSL_GET"), text, {"/k.pem": ""})
    assert located(result) == [
        (4, 5, "warning", "unknown keyword 'certficate' in SSL (ignored)"),
        (2, 5, "warning", "SSL key without a certificate is not used (ignored)"),
        (3, 5, "warning", "SSL password without a certificate and key is not used (ignored)"),
    ]
    assert result.problems[0].hint == "did you mean 'certificate'?"


# -- UDP_CHECK ------------------------------------------------------------------------------------
def udp(body: str) -> str:
    return f"    real_server 192.0.2.21 53 {{\n        UDP_CHECK {{\n{body}        }}\n    }}\n"


def test_udp_check_defaults_and_hex_strings() -> None:
    (plain,) = checkers(load(udp("")))
    assert plain.kind is CheckerKind.UDP_CHECK and plain.params == UdpParams()
    assert (plain.connect_port, plain.retry, plain.delay_before_retry_s) == (53, 1, 1.0)
    (full,) = checkers(load(udp(
        "payload Ab12f 3 456 546443123\nrequire_reply 'de Xd'\nmin_reply_length 2\n"
        "max_reply_length 512\nconnect_timeout 2\nretry 3\n"
    )))  # fmt: skip
    # man5's own example: Ab12f 3 456 546443123 is AB 12 0F 03 45 06 54 64 43 12 03
    assert full.params == UdpParams("AB120F0345065464431203", True, "DExD", 2, 512)
    assert (full.connect_timeout_s, full.retry) == (2, 3)
    (bare,) = checkers(load(udp("require_reply\n")))
    assert bare.params == UdpParams(require_reply=True)


def test_udp_check_errors_are_located() -> None:
    result = load(udp("payload 12 zz\nrequire_reply 1q\nmin_reply_length 9\nmax_reply_length 3\n"))
    assert located(result) == [
        (7, 12, "error", "payload: 'zz' has 'Z', which is not a hex digit"),
        (8, 15, "error", "require_reply: '1q' has 'Q', which is not a hex digit or x"),
        (6, 9, "error", "UDP_CHECK max_reply_length 3 is below min_reply_length 9"),
    ]
    lengths = load(udp("max_reply_length 10\n"))
    assert located(lengths) == [
        (6, 9, "warning", "UDP_CHECK reply lengths are only checked with require_reply"),
    ]


# -- FILE_CHECK -----------------------------------------------------------------------------------
TRACK = "track_file up {\n    file /run/up\n    weight 0 reverse\n}\nvrrp_track_file load {\n" \
        "    file /run/load\n    weight 5\n}\n"  # fmt: skip


def file_check(body: str) -> str:
    return f"    real_server 192.0.2.21 80 {{\n        FILE_CHECK {{\n{body}        }}\n    }}\n"


def test_file_check_takes_the_track_files_weight_unless_it_has_its_own() -> None:
    result = load(file_check("track_file up\n") + file_check("track_file load\n").replace(
        "80 {", "81 {", 1) + file_check("track_file load\nweight -3\ndynamic\n").replace(
        "80 {", "82 {", 1), TRACK)  # fmt: skip
    a, b, c = checkers(result)
    assert all(x.kind is CheckerKind.FILE_CHECK and x.connect_ip is None for x in (a, b, c))
    assert isinstance(a.params, FileCheckParams) and a.params.file.path == "/run/up"
    assert (a.params.weight, a.params.reverse, a.params.dynamic) == (0, True, False)
    assert isinstance(b.params, FileCheckParams)
    assert (b.params.weight, b.params.reverse, b.params.dynamic) == (5, False, False)
    assert isinstance(c.params, FileCheckParams)
    assert (c.params.weight, c.params.reverse, c.params.dynamic) == (-3, False, True)


def test_file_check_errors_are_located() -> None:
    result = load(
        file_check("track_file lod\nconnect_port 80\n")
        + file_check("weight 2147483648\n").replace("80 {", "81 {", 1),
        TRACK,
    )
    got = [x for x in located(result) if "deprecated" not in x[3]]
    assert got == [
        (16, 1, "warning", "unknown keyword 'connect_port' in FILE_CHECK (ignored)"),
        (15, 12, "error", "track_file 'lod' is not defined"),
        (21, 8, "error", "weight 2147483648 is out of range"),
        (20, 9, "error", "FILE_CHECK has no track_file"),
    ]
    assert result.problems[2].hint == "did you mean 'load'?"
    assert result.problems[0].message == "'vrrp_track_file' is deprecated"


def test_track_file_weight_has_the_man_page_range() -> None:
    text = "track_file big {\n    file /run/big\n    weight 100000\n}\n"
    (check,) = checkers(load(file_check("track_file big\n"), text))
    assert isinstance(check.params, FileCheckParams) and check.params.weight == 100000


# -- both front-ends ------------------------------------------------------------------------------
def test_conversion_to_yaml_gives_back_the_same_model() -> None:
    body = (
        http("regex '^ok$'\nregex_no_match\nregex_options caseless utf\nregex_max_offset 7\n"
             "regex_stack 10 20\n", "SSL_GET")
        + udp("payload 0a0b\nrequire_reply 0x\nmax_reply_length 9\n")
        + file_check("track_file load\nweight 2 reverse\ndynamic\n").replace("80 {", "82 {", 1)
    )  # fmt: skip
    result = load(body, SSL_BLOCK + TRACK, SSL_FILES)
    assert result.config is not None and not result.errors, result.errors
    problems = Problems()
    text = dump_yaml(result.config)
    again = parse_yaml_text(text, "/k.yaml", problems)
    assert again is not None and not problems.has_errors, problems.items
    assert strip_locations(again) == strip_locations(result.config)
    assert "ssl:" in text and "require_reply: true" in text and "reply: 0x" in text


YAML_DOC = """
ssl: {certificate: /etc/ssl/client.pem, key: /etc/ssl/client.key, password: secret}
track_files:
  load: {file: /run/load, weight: 5}
virtual_servers:
  - address: 192.0.2.10
    port: 80
    protocol: TCP
    lvs_sched: rr
    lvs_method: DR
    real_servers:
      - address: 192.0.2.21
        checkers:
          - type: SSL_GET
            url: [{path: /, regex: "^up", regex_options: [caseless], regex_min_offset: 1}]
          - {type: UDP_CHECK, connect_port: 53, payload: "01 02", require_reply: true}
          - {type: FILE_CHECK, track_file: load, weight: 3, reverse: true, dynamic: true}
"""
CONF_DOC = """
SSL {
    certificate /etc/ssl/client.pem
    key /etc/ssl/client.key
    password secret
}
track_file load {
    file /run/load
    weight 5
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    lvs_sched rr
    lvs_method DR
    real_server 192.0.2.21 80 {
        SSL_GET {
            url {
                path /
                regex ^up
                regex_options caseless
                regex_min_offset 1
            }
        }
        UDP_CHECK {
            connect_port 53
            payload 0102
            require_reply
        }
        FILE_CHECK {
            track_file load
            weight 3 reverse
            dynamic
        }
    }
}
"""


def test_yaml_form_equals_the_keepalived_form() -> None:
    problems = Problems()
    from_yaml = parse_yaml_text(YAML_DOC, "/c.yaml", problems)
    assert from_yaml is not None and not problems.items, problems.items
    conf = check_config(PATH, MemorySource({PATH: CONF_DOC, **SSL_FILES}))
    assert conf.config is not None and not conf.problems, conf.problems
    assert strip_locations(from_yaml.virtual_servers) == strip_locations(
        conf.config.virtual_servers
    )
