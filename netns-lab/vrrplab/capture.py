"""Watch the LAN from a namespace: every frame with its kernel receive time (SO_TIMESTAMPNS).

An AF_PACKET socket is opened inside the namespace (setns in this thread, then back), so the
capture runs in a plain thread of the lab process. `events()` decodes what the rehearsal needs
(VRRP adverts, ARP, unsolicited NAs) with struct; tests can decode `frames` with scapy.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from vrrplab.netns import in_netns

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
PACKET_OUTGOING = 4


@dataclass(frozen=True)
class Event:
    """One decoded frame: `kind` is advert, arp, na or echo_reply; `t` is kernel time (epoch s)."""

    t: float
    kind: str
    src_mac: str
    src: str
    vrid: int = 0
    priority: int = -1
    target: str = ""
    op: int = 0


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def decode(t: float, frame: bytes) -> Event | None:
    """VRRP advert (IPv4/IPv6), ARP, or ICMPv6 NA; None for anything else or malformed."""
    if len(frame) < 14:
        return None
    src_mac = _mac(frame[6:12])
    etype = struct.unpack_from("!H", frame, 12)[0]
    body = frame[14:]
    if etype == 0x0806 and len(body) >= 28:
        op = struct.unpack_from("!H", body, 6)[0]
        spa, tpa = IPv4Address(body[14:18]), IPv4Address(body[24:28])
        return Event(t, "arp", src_mac, str(spa), target=str(tpa), op=op)
    if etype == 0x0800 and len(body) >= 20 and body[9] == 1 and body[(body[0] & 15) * 4] == 0:
        return Event(t, "echo_reply", src_mac, str(IPv4Address(body[12:16])))
    if etype == 0x0800 and len(body) >= 20 and body[9] == 112:
        ihl = (body[0] & 0x0F) * 4
        vrrp = body[ihl:]
        if len(vrrp) >= 3:
            src = str(IPv4Address(body[12:16]))
            return Event(t, "advert", src_mac, src, vrid=vrrp[1], priority=vrrp[2])
    if etype == 0x86DD and len(body) >= 40:
        nh, src = body[6], str(IPv6Address(body[8:24]))
        payload = body[40:]
        if nh == 112 and len(payload) >= 3:
            return Event(t, "advert", src_mac, src, vrid=payload[1], priority=payload[2])
        if nh == 58 and len(payload) >= 24 and payload[0] == 136:
            return Event(t, "na", src_mac, src, target=str(IPv6Address(payload[8:24])))
    return None


class Capture:
    """Record every frame seen on `ifname` inside namespace `ns` until `stop()`."""

    def __init__(self, ns: str, ifname: str = "eth0") -> None:
        with in_netns(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((ifname, ETH_P_ALL))
        self.frames: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{ns}", daemon=True)

    def __enter__(self) -> Capture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Capture:
        return self.__enter__()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(16))
            except OSError:
                return  # the namespace or the interface went away: nothing more to see
            if addr[2] == PACKET_OUTGOING:
                continue  # only what arrives at this namespace
            t = 0.0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    t = sec + nsec / 1e9
            with self._lock:
                self.frames.append((t, data))

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join(2)
            self.sock.close()

    def snapshot(self) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self.frames)

    def events(self) -> list[Event]:
        return [e for t, f in self.snapshot() if (e := decode(t, f)) is not None]
