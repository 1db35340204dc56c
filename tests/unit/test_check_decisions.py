"""The decision logic of the url regex, UDP_CHECK, FILE_CHECK and the SSL block's TLS context,
without a network: bodies, replies and file values given literally (the TLS files are made
with openssl in tmp_path)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest
import structlog

from vrrpd.check.checkerset import CheckerSet, RsChange
from vrrpd.check.http import Response, _verdict, body_matches
from vrrpd.check.net import Attempt
from vrrpd.check.state import FileVerdict, file_verdict
from vrrpd.check.tls import TlsContexts, TlsSetupError, client_context
from vrrpd.check.udp import RANDOM_PAYLOAD_BYTES, payload_bytes, reply_verdict
from vrrpd.config.lvsmodel import (
    CheckerKind,
    CheckerSpec,
    FileCheckParams,
    RealServerSpec,
    RegexSpec,
    SslSpec,
    UdpParams,
    UrlSpec,
    VirtualServerSpec,
)
from vrrpd.config.model import TrackFileSpec


# -- url regex ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "body", "found"),
    [
        (RegexSpec("status: up"), b"<p>status: up</p>", True),
        (RegexSpec("status: up"), b"<p>status: down</p>", False),
        (RegexSpec("STATUS"), b"status", False),
        (RegexSpec("STATUS", options=("caseless",)), b"status", True),
        (RegexSpec("^ok$"), b"first\nok\n", False),
        (RegexSpec("^ok$", options=("multiline",)), b"first\nok\n", True),
        (RegexSpec("a.b"), b"a\nb", False),
        (RegexSpec("a.b", options=("dotall",)), b"a\nb", True),
        # offsets are byte offsets into the body; the match must start in [min, max]
        (RegexSpec("ok", min_offset=3), b"ok ok", True),
        (RegexSpec("ok", min_offset=4), b"ok ok", False),
        (RegexSpec("ok", max_offset=2), b"...ok", False),
        (RegexSpec("ok", max_offset=3), b"...ok", True),
        (RegexSpec("ok", min_offset=99), b"ok", False),
        (RegexSpec("^ok", min_offset=3), b"xx ok", False),  # ^ is not the start offset
        # firstline: the match starts by the first newline after the start
        (RegexSpec("ok", options=("firstline",)), b"hello ok\nok", True),
        (RegexSpec("ok", options=("firstline",)), b"hello\nok", False),
        # \w is ASCII without ucp, as PCRE2's; with utf one character is one '.'
        (RegexSpec(r"^\w$", options=("utf",)), "é".encode(), False),
        (RegexSpec(r"^\w$", options=("utf", "ucp")), "é".encode(), True),
        (RegexSpec("^..$"), "é".encode(), True),
        (RegexSpec("é", options=("utf",), max_offset=2), "xxé".encode(), True),
        (RegexSpec("y", options=("utf",), min_offset=2), "éy".encode(), True),
    ],
)
def test_body_matches(spec: RegexSpec, body: bytes, found: bool) -> None:
    assert body_matches(spec, body) is found


def test_a_non_utf8_body_fails_a_utf_regex() -> None:
    assert body_matches(RegexSpec("x", options=("utf",)), b"x\xff") is None
    url = UrlSpec("/", regex=RegexSpec("x", options=("utf",)))
    assert _verdict(url, Response(200, "", 2, b"x\xff")).detail.startswith("body is not UTF-8")


def test_status_then_regex_then_digest_decide() -> None:
    up, down = b"state=up", b"state=down"
    url = UrlSpec("/h", regex=RegexSpec("state=up"))
    assert _verdict(url, Response(200, "", 8, up)) == Attempt(True, "regex success to {rs} url(/h)")
    assert _verdict(url, Response(200, "", 10, down)) == Attempt(
        False, "regex did not match url(/h)"
    )
    assert _verdict(url, Response(503, "", 8, up)).detail == "HTTP status code error (503) url(/h)"
    inverted = replace(url, regex=RegexSpec("state=up", no_match=True))
    assert _verdict(inverted, Response(200, "", 10, down)).ok
    assert _verdict(inverted, Response(200, "", 8, up)) == Attempt(
        False, "regex matched (regex_no_match) url(/h)")  # fmt: skip
    both = replace(url, digest="0" * 32)
    assert _verdict(both, Response(200, "f" * 32, 8, up)).detail.startswith("MD5 digest error")


# -- UDP_CHECK ------------------------------------------------------------------------------------
def test_udp_payload() -> None:
    assert payload_bytes(UdpParams(payload="AB120F")) == b"\xab\x12\x0f"
    assert payload_bytes(UdpParams(payload="")) == b""
    random_one = payload_bytes(UdpParams())
    assert len(random_one) == RANDOM_PAYLOAD_BYTES and random_one != payload_bytes(UdpParams())


@pytest.mark.parametrize(
    ("params", "reply", "ok"),
    [
        (UdpParams(require_reply=True), b"anything", True),
        (UdpParams(require_reply=True), b"", True),  # min_reply_length defaults to 0
        (UdpParams(require_reply=True), b"x" * 256, False),  # max_reply_length 255
        (UdpParams(require_reply=True, min_reply_length=4), b"abc", False),
        (UdpParams(require_reply=True, reply="DEAD"), b"\xde\xad\xbe\xef", True),
        (UdpParams(require_reply=True, reply="DEAD"), b"\xde\xaf", False),
        # compared over the shorter of the two
        (UdpParams(require_reply=True, reply="DEADBEEF"), b"\xde", True),
        # x: the nibble may be anything
        (UdpParams(require_reply=True, reply="xExD"), b"\x1e\xfd", True),
        (UdpParams(require_reply=True, reply="xExD"), b"\x1f\xfd", False),
    ],
)
def test_udp_reply_verdict(params: UdpParams, reply: bytes, ok: bool) -> None:
    assert reply_verdict(params, reply).ok is ok


def test_udp_reply_verdict_reasons() -> None:
    params = UdpParams(require_reply=True, reply="0102", max_reply_length=4)
    assert reply_verdict(params, b"\x01\x03").detail == "reply differs from require_reply at byte 1"
    assert reply_verdict(params, b"\x01" * 5).detail == "reply of 5 bytes, not 0..4"


# -- FILE_CHECK -----------------------------------------------------------------------------------
def params(weight: int = 1, reverse: bool = False, dynamic: bool = False) -> FileCheckParams:
    return FileCheckParams(TrackFileSpec("f", "/run/f"), weight, reverse, dynamic)


@pytest.mark.parametrize(
    ("value", "p", "verdict"),
    [
        (0, params(0), FileVerdict(True)),  # weight 0: a switch, zero is OK
        (1, params(0), FileVerdict(False)),
        (-7, params(0), FileVerdict(False)),
        (0, params(0, reverse=True), FileVerdict(False)),
        (3, params(0, reverse=True), FileVerdict(True)),
        (5, params(2), FileVerdict(True, 0)),  # a weight adds only with dynamic
        (5, params(2, dynamic=True), FileVerdict(True, 10)),
        (5, params(2, reverse=True, dynamic=True), FileVerdict(True, -10)),
        (-(2**31), params(1), FileVerdict(False)),  # at the lower limit: FAULT
        (-(2**40), params(1, dynamic=True), FileVerdict(False)),  # values are clamped first
        (-(2**30), params(2), FileVerdict(False)),
        (-(2**30), params(1, dynamic=True), FileVerdict(True, -(2**30))),
    ],
)
def test_file_verdict(value: int, p: FileCheckParams, verdict: FileVerdict) -> None:
    assert file_verdict(value, p) == verdict


class FakeFiles:
    """A `FileSource` whose values the test sets."""

    def __init__(self, specs: Sequence[TrackFileSpec], report: Callable[[str, int], None]):
        self.specs, self.report = list(specs), report
        self.values = dict(INITIAL)
        self.started = self.closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.started = True

    async def run(self) -> None:
        await asyncio.Event().wait()

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        self.closed = True


INITIAL = {"switch": 1, "load": 3}


def file_spec(name: str, weight: int, dynamic: bool = False) -> CheckerSpec:
    p = FileCheckParams(TrackFileSpec(name, f"/run/{name}"), weight, dynamic=dynamic)
    return CheckerSpec(CheckerKind.FILE_CHECK, params=p)


def test_checker_set_follows_the_files() -> None:
    rs_a = RealServerSpec(ip_address("192.0.2.21"), 80, weight=5,
                          checkers=(file_spec("switch", 0),))  # fmt: skip
    rs_b = RealServerSpec(ip_address("192.0.2.22"), 80, weight=5,
                          checkers=(file_spec("load", -1, dynamic=True),))  # fmt: skip
    vs = VirtualServerSpec(ip_address("192.0.2.10"), 80, real_servers=(rs_a, rs_b))
    changes: list[RsChange] = []
    made: list[FakeFiles] = []

    def factory(specs: Sequence[TrackFileSpec], report: Callable[[str, int], None]) -> FakeFiles:
        made.append(FakeFiles(specs, report))
        return made[0]

    async def scenario() -> list[RsChange]:
        checkers = CheckerSet([vs], changes.append, file_watcher=factory)
        (files,) = made
        assert sorted(s.name for s in files.specs) == ["load", "switch"]
        start = checkers.states()  # the values at construction: down, and weight 5 - 3
        await checkers.start()
        files.report("switch", 0)
        files.report("load", 10)  # 5 - 10 is kept at 0
        files.report("load", 1)
        await checkers.stop()
        assert files.started and files.closed
        return start

    with structlog.testing.capture_logs() as logs:
        start = asyncio.run(scenario())
    assert [(s.up, s.weight) for s in start] == [(False, 5), (True, 2)]
    assert [(c.rs.address.packed[-1], c.up, c.weight) for c in changes] == [
        (21, True, 5), (22, True, 0), (22, True, 4)]  # fmt: skip
    events = [str(e["event"]) for e in logs]
    assert "FILE_CHECK on service [192.0.2.21]:tcp:80 of VS [192.0.2.10]:tcp:80: track file " \
           "switch value 0 - up" in events  # fmt: skip
    assert "Adding service [192.0.2.21]:tcp:80 to VS [192.0.2.10]:tcp:80" in events
    assert "Changing weight from 2 to 0 for active service [192.0.2.22]:tcp:80 of VS " \
           "[192.0.2.10]:tcp:80" in events  # fmt: skip


# -- the SSL block's context ----------------------------------------------------------------------
def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def test_tls_context_from_the_ssl_block(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-days", "1", "-subj", "/CN=client",
            "-passout", "pass:pw", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    generated = client_context(None)
    assert generated.verify_mode is ssl.CERT_NONE and not generated.check_hostname
    spec = SslSpec(password="pw", ca=str(cert), certificate=str(cert), key=str(key))
    ctx = client_context(spec)
    assert ctx.verify_mode is ssl.CERT_NONE  # keepalived documents no server verification
    assert ctx.cert_store_stats()["x509_ca"] == 1
    # a wrong or missing password fails at once: OpenSSL never prompts on a terminal
    for bad in (replace(spec, password="nope"), replace(spec, password=None)):
        with pytest.raises(TlsSetupError):
            client_context(bad)
    contexts = TlsContexts()
    missing = replace(spec, ca=str(tmp_path / "none.pem"))
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(TlsSetupError, match="SSL context"):
                contexts.get(missing)
    assert len(logs) == 1  # reported once, then remembered
    assert contexts.get(spec) is contexts.get(spec)
