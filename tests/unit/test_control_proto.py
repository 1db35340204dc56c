"""The control protocol's parsing and formatting (docs/control.md), and vrrpctl's output."""

from __future__ import annotations

import json
import socket
import threading
from ipaddress import IPv4Address, IPv4Interface

import pytest

from vrrpd.config.model import Config, InstanceConfig, TrackRef, VipSpec
from vrrpd.core.engine import Engine
from vrrpd.core.inputs import LinkState
from vrrpd.ctl import CannotConnect, _encode, format_done, format_status, request
from vrrpd.runtime.control_proto import (
    MAX_HOLD_S,
    ControlError,
    Request,
    encode_request,
    error_response,
    ok_response,
    parse_request,
    parse_response,
    socket_path,
    status_json,
    trackers_from_snapshot,
)

VIP = VipSpec(IPv4Interface("192.0.2.100/24"))
CFG = InstanceConfig(
    name="VI_1",
    vrid=51,
    interface="d0",
    priority=150,
    vips=(VIP,),
    track_scripts=(TrackRef("chk_web", weight=-20),),
    track_interfaces=(TrackRef("d1", weight=0),),
)


def parse(obj: object) -> Request:
    return parse_request(json.dumps(obj).encode() + b"\n")


def refused(line: bytes) -> ControlError:
    with pytest.raises(ControlError) as info:
        parse_request(line)
    return info.value


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ({"cmd": "status"}, Request("status")),
        ({"cmd": "reload", "id": 7}, Request("reload", id=7)),
        (
            {"cmd": "priority", "instance": "VI_1", "priority": 200},
            Request("priority", "VI_1", 200),
        ),
        ({"cmd": "priority", "instance": "VI_1", "priority": None}, Request("priority", "VI_1")),
        ({"cmd": "resign", "instance": "VI_1"}, Request("resign", "VI_1")),
        (
            {"cmd": "resign", "instance": "VI_1", "hold_s": 30},
            Request("resign", "VI_1", hold_s=30.0),
        ),
        ({"cmd": "takeover", "instance": "VI_1", "id": "a"}, Request("takeover", "VI_1", id="a")),
    ],
)
def test_valid_requests_parse(body, want):
    assert parse(body) == want


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        (b"hello\n", "bad_json", "not JSON"),
        (b"\xff\xfe\n", "bad_json", "not JSON"),
        (b"[1, 2]\n", "bad_request", "JSON object"),
        (b'{"command": "status"}\n', "bad_request", '"cmd"'),
        (b'{"cmd": "explode"}\n', "unknown_command", "unknown command 'explode'"),
        (b'{"cmd": "status", "instance": "VI_1"}\n', "bad_request", "status takes no 'instance'"),
        (b'{"cmd": "takeover"}\n', "bad_request", 'needs "instance"'),
        (b'{"cmd": "takeover", "instance": 5}\n', "bad_request", 'needs "instance"'),
        (b'{"cmd": "priority", "instance": "VI_1"}\n', "bad_request", "1..254"),
        (b'{"cmd": "priority", "instance": "VI_1", "priority": 255}\n', "bad_request", "255"),
        (b'{"cmd": "priority", "instance": "VI_1", "priority": 0}\n', "bad_request", "1..254"),
        (b'{"cmd": "priority", "instance": "VI_1", "priority": true}\n', "bad_request", "True"),
        (b'{"cmd": "priority", "instance": "VI_1", "priority": "9"}\n', "bad_request", "'9'"),
        (b'{"cmd": "resign", "instance": "VI_1", "hold_s": 0}\n', "bad_request", "hold_s"),
        (b'{"cmd": "resign", "instance": "VI_1", "hold_s": -1}\n', "bad_request", "hold_s"),
        (b'{"cmd": "resign", "instance": "VI_1", "hold_s": 1e400}\n', "bad_request", "hold_s"),
        (b'{"cmd": "resign", "instance": "VI_1", "hold_s": NaN}\n', "bad_request", "hold_s"),
        (b'{"cmd": "resign", "instance": "VI_1", "hold_s": "5"}\n', "bad_request", "hold_s"),
        (b'{"cmd": "status", "id": [1]}\n', "bad_request", '"id"'),
    ],
)
def test_bad_requests_get_a_code_and_a_clear_message(line, code, words):
    err = refused(line)
    assert err.code == code
    assert words in err.message


def test_hold_is_bounded_by_a_week():
    assert parse({"cmd": "resign", "instance": "x", "hold_s": MAX_HOLD_S}).hold_s == MAX_HOLD_S
    assert refused(
        json.dumps({"cmd": "resign", "instance": "x", "hold_s": MAX_HOLD_S + 1}).encode()
    )


def test_requests_describe_themselves_for_the_log():
    assert parse({"cmd": "priority", "instance": "VI_1", "priority": None}).describe() == (
        "priority VI_1 clear"
    )
    assert Request("priority", "VI_1", 90).describe() == "priority VI_1 90"
    assert Request("resign", "VI_1", hold_s=2.5).describe() == "resign VI_1 for 2.5 s"
    assert Request("takeover", "VI_1").describe() == "takeover VI_1"


def test_client_encoding_round_trips_through_the_parser():
    assert parse_request(encode_request("resign", instance="VI_1", hold_s=None)) == Request(
        "resign", "VI_1"
    )
    # vrrpctl sends "priority": null on purpose to clear the override
    line = _encode("priority", {"instance": "VI_1", "priority": None, "hold_s": None})
    assert parse_request(line) == Request("priority", "VI_1", None)
    line = _encode("resign", {"instance": "VI_1", "priority": None, "hold_s": 3.0})
    assert parse_request(line) == Request("resign", "VI_1", hold_s=3.0)


def test_responses_are_one_line_and_parse_back():
    ok = ok_response({"message": "reload requested"}, 7)
    err = error_response("unknown_instance", "no instance 'X'")
    for line in (ok, err):
        assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_response(ok) == {
        "v": 1,
        "id": 7,
        "ok": True,
        "result": {"message": "reload requested"},
    }
    body = parse_response(err)
    assert body["ok"] is False and "id" not in body
    assert body["error"] == {"code": "unknown_instance", "message": "no instance 'X'"}


@pytest.mark.parametrize("line", [b"", b"garbage", b"[]", b'{"ok": 1}', b'{"ok": false}'])
def test_client_rejects_answers_that_are_not_responses(line):
    with pytest.raises(ControlError):
        parse_response(line)


def test_socket_path_sits_beside_the_pid_file_unless_configured():
    assert socket_path(None, None) == "/run/vrrpd.ctl"
    assert socket_path(None, "/run/vrrpd.pid") == "/run/vrrpd.ctl"
    assert socket_path(None, "/run/ns1/keepalived.pid") == "/run/ns1/keepalived.ctl"
    assert socket_path(None, "/tmp/t/main") == "/tmp/t/main.ctl"
    assert socket_path("/run/x.sock", "/run/vrrpd.pid") == "/run/x.sock"


def running_engine() -> Engine:
    eng = Engine(Config(instances=(CFG,)))
    eng.on_link(LinkState("d0", 3, True, IPv4Address("192.0.2.1")), 0.0)
    eng.start(10.0)
    return eng


def test_status_json_carries_every_field_the_issue_asks_for():
    eng = running_engine()
    out = status_json(eng.status(), {"VI_1": CFG}, now=12.5, wall=1_000_000.0)
    (item,) = out
    assert item["name"] == "VI_1" and item["state"] == "BACKUP"
    assert (item["base_priority"], item["effective_priority"]) == (150, 150)
    assert item["interface"] == "d0" and item["vrid"] == 51 and item["version"] == 2
    assert item["advert_int_s"] == 1.0 and item["vips"] == ["192.0.2.100/24"]
    assert item["source_address"] == "192.0.2.1" and item["master_address"] is None
    assert item["faults"] == []
    assert item["counters"]["advert_rcvd"] == 0 and "become_master" in item["counters"]
    last = item["last_transition"]
    assert (last["at"], last["ago_s"]) == (999_997.5, 2.5)
    assert last["reason"] == eng.instances["VI_1"].last_reason != ""
    assert {"kind": "script", "name": "chk_web", "weight": -20, "reverse": False} in item[
        "trackers"
    ]
    json.dumps(out)  # plain JSON, no default= needed


def test_status_json_uses_live_tracker_data_when_there_is_some():
    eng = running_engine()
    snap = {"chk_web": {"status": "failed", "rc": 1}, "chk_other": {"status": "ok"}}
    out = status_json(
        eng.status(), {"VI_1": CFG}, 0.0, 0.0, lambda cfg: trackers_from_snapshot(snap, cfg)
    )
    assert out[0]["trackers"] == {"chk_web": {"status": "failed", "rc": 1}}


def test_tracker_snapshot_shapes():
    by_instance = {"VI_1": [{"name": "chk_web", "up": False}]}
    assert trackers_from_snapshot(by_instance, CFG) == [{"name": "chk_web", "up": False}]
    as_list = [{"name": "chk_web", "up": True}, {"name": "unrelated", "up": True}]
    assert trackers_from_snapshot(as_list, CFG) == [{"name": "chk_web", "up": True}]


def test_status_table_is_readable():
    eng = running_engine()
    result = {"instances": status_json(eng.status(), {"VI_1": CFG}, 12.5, 1_000_000.0)}
    text = format_status(result)
    header, row = text.splitlines()[:2]
    assert header.split() == ["INSTANCE", "STATE", "PRIO", "MASTER", "INTERFACE", "VRID", "VER",
                              "ADVERT", "VIPS"]  # fmt: skip
    assert row.split() == ["VI_1", "BACKUP", "150", "-", "d0", "51", "2", "1s", "192.0.2.100/24"]
    assert "trackers:" in text and "chk_web" in text
    assert format_status({"instances": []}) == "no VRRP instances configured"


def test_status_table_shows_an_override_and_unknown_extra_fields():
    item = {"name": "VI_1", "state": "MASTER", "base_priority": 90, "effective_priority": 70,
            "vips": [], "resigned_until": 123.0}  # fmt: skip
    text = format_status({"instances": [item]})
    assert "70 (base 90)" in text
    assert "resigned_until: 123.0" in text


def test_done_message_names_the_instance_state():
    inst = {"name": "VI_1", "state": "BACKUP", "base_priority": 90, "effective_priority": 90}
    assert format_done({"message": "resign VI_1 done", "instance": inst}) == (
        "resign VI_1 done: VI_1 is BACKUP, priority 90 (base 90)"
    )
    assert format_done({"message": "reload requested"}) == "reload requested"


def test_tracker_snapshot_of_the_trackers_service_is_narrowed_to_the_instance():
    # the shape of vrrpd.runtime.trackers.TrackerService.snapshot()
    snap = {
        "chk_web": {"type": "script", "status": "BAD", "weight": -20, "reverse": False,
                    "instances": {"VI_1": {"weight": -20, "reverse": False, "delta": -20,
                                           "fault": False},
                                  "VI_2": {"weight": -5, "reverse": False, "delta": -5,
                                           "fault": False}}},
        "chk_db": {"type": "script", "status": "GOOD", "instances": {"VI_2": {"delta": 0}}},
    }  # fmt: skip
    assert trackers_from_snapshot(snap, CFG) == {
        "chk_web": {"type": "script", "status": "BAD", "weight": -20, "reverse": False,
                    "delta": -20, "fault": False},
    }  # fmt: skip


def test_status_json_reports_manual_failover_in_force():
    eng = running_engine()
    eng.override_priority("VI_1", 170, 11.0, who="test")
    eng.resign("VI_1", 11.0, 30.0, who="test")
    (item,) = status_json(eng.status(), {"VI_1": CFG}, now=12.0, wall=1_000_000.0)
    assert item["base_override"] == 170 and item["manual"] == "resign"
    assert item["manual_remaining_s"] == 29.0 and item["manual_until"] == 1_000_029.0
    text = format_status({"instances": [item]})
    assert "manual: resign (29.0 s left)" in text
    assert "base priority overridden to 170" in text


def test_vrrpctl_waits_for_room_in_a_full_backlog(tmp_path):
    """A Unix socket with a full listen backlog refuses a non-blocking connect with EAGAIN at
    once; vrrpctl retries until its timeout instead of failing (exit 3 only then)."""
    path = str(tmp_path / "ctl")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    fillers = []
    try:
        while True:  # fill the backlog with clients nobody accepts
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(path)
            except BlockingIOError:
                s.close()
                break
            fillers.append(s)
        with pytest.raises(CannotConnect, match="busy"):
            request(path, b'{"cmd":"status"}\n', 0.2)

        def serve() -> None:
            for _ in range(len(fillers) + 1):
                conn, _ = server.accept()
                if conn.recv(4096):
                    conn.sendall(b'{"ok":true,"result":{}}\n')
                conn.close()

        for s in fillers:
            s.close()
        worker = threading.Thread(target=serve, daemon=True)
        worker.start()
        assert request(path, b'{"cmd":"status"}\n', 5) == {"ok": True, "result": {}}
    finally:
        for s in fillers:
            s.close()
        server.close()
