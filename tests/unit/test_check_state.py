"""The checkers' pure parts: keepalived's retry/up/down bookkeeping with literal results, the
real-server aggregation and weights, log and FIFO line texts, and the wire formats (HTTP request,
HTTP response reading, DNS query/answer, ICMP echo) without any socket."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import replace
from ipaddress import ip_address

import pytest

from vrrpd.check.checkerset import CheckerSet, RsChange, report_line
from vrrpd.check.http import MAX_BODY_BYTES, _read_response, request_bytes
from vrrpd.check.icmp import echo_request, is_reply
from vrrpd.check.net import Attempt
from vrrpd.check.notify import rs_fifo_line, vs_fifo_line
from vrrpd.check.probes import dns_answer, dns_query
from vrrpd.check.state import CheckerState, RealServerState, Verdict, dynamic_weight
from vrrpd.config.lvsmodel import (
    CheckerKind,
    CheckerSpec,
    DnsParams,
    HttpParams,
    MiscParams,
    RealServerSpec,
    UrlSpec,
    VirtualServerSpec,
)
from vrrpd.config.model import Command
from vrrpd.proto.checksum import internet_checksum

RS_IP = ip_address("192.0.2.21")


def spec(kind: CheckerKind = CheckerKind.TCP_CHECK, **kw: object) -> CheckerSpec:
    base = CheckerSpec(kind, RS_IP, 80, delay_loop_s=6, delay_before_retry_s=1, retry=2)
    return replace(base, **kw)  # type: ignore[arg-type]


def run(state: CheckerState, results: str) -> list[Verdict]:
    """Feed results as a string of '+' (success) and '-' (failure)."""
    return [state.record(r == "+") for r in results]


# -- keepalived's timing semantics ------------------------------------------------------------
def test_failures_retry_then_report_down_once() -> None:
    state = CheckerState(spec())
    verdicts = run(state, "+--- -+".replace(" ", ""))
    assert [(v.delay_s, v.report, v.changed) for v in verdicts] == [
        (6, "UP", False),  # first result is reported; it was already up
        (1, None, False),  # retry 1 of 2 after delay_before_retry
        (1, None, False),  # retry 2 of 2
        (6, "DOWN", True),  # retries used up: down, back to delay_loop
        (6, None, False),  # already down: no retries, just delay_loop
        (6, "UP", True),
    ]
    assert verdicts[3].retries == 2 and state.is_up and state.failures == 4


def test_a_success_during_retries_resets_the_counter() -> None:
    state = CheckerState(spec())
    verdicts = run(state, "+-+--")
    assert [v.report for v in verdicts] == ["UP", None, None, None, None]
    assert state.is_up and state.retry_it == 2


def test_alpha_starts_down_and_comes_up_on_the_first_success() -> None:
    state = CheckerState(spec(alpha=True))
    assert not state.is_up
    assert [(v.report, v.changed) for v in run(state, "+")] == [("UP", True)]
    down = CheckerState(spec(alpha=True, retry=0))
    assert [(v.report, v.changed, v.delay_s) for v in run(down, "--")] == [
        ("DOWN", False, 6), (None, False, 6)]  # fmt: skip


def test_retry_zero_goes_down_on_the_first_failure() -> None:
    state = CheckerState(spec(retry=0))
    assert [(v.report, v.changed) for v in run(state, "+-")] == [("UP", False), ("DOWN", True)]


def test_real_server_is_alive_while_no_checker_is_down() -> None:
    a, b = CheckerState(spec()), CheckerState(spec(alpha=True))
    server = RealServerState(3, [a, b])
    assert not server.alive  # an alpha checker starts down
    b.record(True)
    assert server.alive
    run(a, "---")
    assert not server.alive and server.effective_weight == 3
    server.deltas[0] = 7  # what dynamic checkers add to the configured weight, summed
    server.deltas[1] = -1
    assert server.effective_weight == 9
    server.deltas[1] = -100  # kept within IPVS's 0..65535
    assert server.effective_weight == 0
    server.deltas[1] = 70000
    assert server.effective_weight == 65535


@pytest.mark.parametrize(("rc", "weight"), [(0, 5), (2, 0), (12, 10), (255, 253), (1, 5)])
def test_misc_dynamic_weight(rc: int, weight: int) -> None:
    assert dynamic_weight(rc, 5) == weight


# -- real-server changes as the glue sees them -------------------------------------------------
def vs_with(*checkers: CheckerSpec, inhibit: bool = False) -> VirtualServerSpec:
    rs = RealServerSpec(RS_IP, 80, weight=2, checkers=checkers, inhibit_on_failure=inhibit)
    return VirtualServerSpec(address=ip_address("192.0.2.10"), port=80, real_servers=(rs,))


def test_checker_set_reports_changes_and_weights() -> None:
    misc = spec(CheckerKind.MISC_CHECK, params=MiscParams(Command(("/bin/x",)), 5, True))
    vs = vs_with(spec(), misc)
    seen: list[RsChange] = []
    fifo: list[str] = []
    checkers = CheckerSet([vs], seen.append)
    checkers.notifier.fifo_write = fifo.append
    server = checkers.servers[0]
    tcp_state, misc_state = server.state.checkers
    assert [s.up for s in checkers.states()] == [True]
    checkers._apply(server, misc_state, Attempt(True, rc=12))  # weight 12 - 2
    for ok in (False, False, False):
        checkers._apply(server, tcp_state, Attempt(ok, "timeout"))
    checkers._apply(server, tcp_state, Attempt(True))
    assert [(c.up, c.weight) for c in seen] == [(True, 10), (False, 10), (True, 10)]
    assert fifo == [
        "RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN\n",
        "RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 UP\n",
    ]


def test_a_failing_change_handler_does_not_stop_the_checker() -> None:
    def broken(change: RsChange) -> None:
        raise RuntimeError("glue bug")

    checkers = CheckerSet([vs_with(spec(retry=0))], broken)
    server = checkers.servers[0]
    assert checkers._apply(server, server.state.checkers[0], Attempt(False)) == 6
    assert not server.alive


# -- texts --------------------------------------------------------------------------------------
def test_keepalived_log_lines() -> None:
    rs, vs = "[192.0.2.21]:tcp:80", "[192.0.2.10]:tcp:80"
    up, down = Verdict(6, "UP", True), Verdict(6, "DOWN", True, retries=1)
    assert report_line(spec(), up, Attempt(True), rs, vs) == (
        "TCP connection to [192.0.2.21]:tcp:80 success.")  # fmt: skip
    assert report_line(spec(), down, Attempt(False), rs, vs) == (
        "TCP_CHECK on service [192.0.2.21]:tcp:80 failed after 1 retries.")  # fmt: skip
    assert report_line(spec(retry=0), Verdict(6, "DOWN", True), Attempt(False), rs, vs) == (
        "TCP_CHECK on service [192.0.2.21]:tcp:80 failed.")  # fmt: skip
    http = spec(CheckerKind.HTTP_GET)
    ok = Attempt(True, "HTTP status code success to {rs} url(/)")
    assert report_line(http, up, ok, rs, vs) == (
        "HTTP status code success to [192.0.2.21]:tcp:80 url(/)")  # fmt: skip
    misc = spec(CheckerKind.MISC_CHECK, params=MiscParams(Command(("/bin/chk", "a")), 5))
    assert report_line(misc, down, Attempt(False, "exited with status 1"), rs, vs) == (
        "Misc check for [[192.0.2.21]:tcp:80 VS [192.0.2.10]:tcp:80] by [/bin/chk] failed "
        "after 1 retries (exited with status 1).")  # fmt: skip
    ping = spec(CheckerKind.PING_CHECK)
    assert report_line(ping, down, Attempt(False), rs, vs) == (
        "ICMP CHECK on service [192.0.2.21]:tcp:80 of [192.0.2.10]:tcp:80 failed after 1 "
        "retries.")  # fmt: skip


def test_fifo_lines() -> None:
    vs = vs_with(spec())
    assert vs_fifo_line(vs, True) == "VS [192.0.2.10]:tcp:80 UP\n"
    assert rs_fifo_line(vs, vs.real_servers[0], False) == (
        "RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN\n")  # fmt: skip
    assert vs_fifo_line(VirtualServerSpec(fwmark=3), False) == "VS FWM 3 DOWN\n"


# -- wire formats -------------------------------------------------------------------------------
def test_http_request_is_keepalived_s() -> None:
    url = UrlSpec("/health")
    assert request_bytes(spec(), HttpParams(), url) == (
        b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.21:80\r\n\r\n"
    )
    v6 = spec(connect_ip=ip_address("2001:db8::21"), connect_port=8080)
    assert request_bytes(v6, HttpParams(http_protocol="1.1"), replace(url, virtualhost="w")) == (
        b"GET /health HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
        b"Host: w\r\n\r\n"
    )
    assert b"Host: [2001:db8::21]:8080\r\n" in request_bytes(v6, HttpParams(), url)


def read(data: bytes) -> object:
    async def go() -> object:
        reader = asyncio.StreamReader(limit=64 * 1024)
        reader.feed_data(data)
        reader.feed_eof()
        return await _read_response(reader)

    return asyncio.run(go())


def test_http_response_reading() -> None:
    body = b"hello world\n"
    md5 = hashlib.md5(body).hexdigest()
    assert read(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n" + body + b"junk") == (
        200, md5, 12, None)  # fmt: skip
    assert read(b"HTTP/1.0 404 Not Found\r\n\r\n" + body) == (404, md5, 12, None)
    assert read(b"") == "no data received"
    assert read(b"SMTP 220 hello\r\n\r\n") == "malformed status line"
    assert read(b"HTTP/1.1 200 OK\r\nX: y") == "malformed response (no header end)"
    assert read(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n") == (
        "response header larger than 65536 bytes")  # fmt: skip
    huge = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (MAX_BODY_BYTES + 1)
    assert read(huge) == f"response body larger than {MAX_BODY_BYTES} bytes"


def test_dns_query_and_answers() -> None:
    query = dns_query(DnsParams("A", "www.example.com"), 0x1234)
    assert query[:12] == bytes.fromhex("123401000001000000000000")
    assert query[12:] == b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    assert dns_query(DnsParams(), 1)[12:] == b"\x00\x00\x06\x00\x01"  # "." SOA IN
    answer = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0)
    assert dns_answer(answer, 0x1234) == Attempt(True, "")
    assert dns_answer(answer, 0x9999) is None  # not ours: keep waiting
    assert dns_answer(answer[:11], 0x1234) is None
    refused = struct.pack("!HHHHHH", 0x1234, 0x8185, 1, 0, 0, 0)
    assert dns_answer(refused, 0x1234) == Attempt(False, "read error occurred. (rcode = 5)")
    assert dns_answer(struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0), 0x1234) is None


def test_icmp_echo() -> None:
    packet = echo_request(4, 0x4242, 7)
    assert packet[0] == 8 and internet_checksum(packet) == 0
    reply = bytes([0, 0]) + packet[2:]
    assert is_reply(reply, 4, False, 0, 7) and not is_reply(reply, 4, False, 0, 8)
    iphdr = bytes([0x45]) + bytes(19)
    assert is_reply(iphdr + reply, 4, True, 0x4242, 7)
    assert not is_reply(iphdr + reply, 4, True, 0x4243, 7)
    assert echo_request(6, 1, 2)[0] == 128
    assert is_reply(bytes([129, 0, 0, 0, 0, 1, 0, 2]), 6, True, 1, 2)
