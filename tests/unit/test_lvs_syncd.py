"""`lvs_sync_daemon` plumbing that needs no kernel: the executor's state listeners, the
IPVS_CMD_NEW_DAEMON message the adapter builds, and when the service is built (-C, -P)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from ipaddress import ip_address
from types import SimpleNamespace
from typing import Any

from vrrpd.config.model import Config, GlobalDefs, InstanceConfig, LvsSyncDaemonSpec
from vrrpd.core.actions import State, StateChanged
from vrrpd.io.ipvs import IP_VS_STATE_MASTER, SyncDaemon, _daemonmsg
from vrrpd.runtime import lvs
from vrrpd.runtime.executor import Executor


def test_state_listeners_hear_every_change_in_order_and_a_broken_one_stops_nothing() -> None:
    # StateChanged touches no IO adapter, so none is needed here.
    executor = Executor(None, None, None, None, False)  # type: ignore[arg-type]
    heard: list[tuple[str, State]] = []

    def broken(instance: str, state: State) -> None:
        raise RuntimeError("listener bug")

    executor.state_listeners += [broken, lambda i, s: heard.append((i, s))]
    changes = [
        StateChanged("VI_1", State.BACKUP, State.MASTER, "higher priority"),
        StateChanged("VI_2", State.MASTER, State.FAULT, "eth0 down"),
        StateChanged("VI_1", State.MASTER, State.BACKUP, "preempted"),
    ]
    assert asyncio.run(executor.run(list(changes))) == []
    assert heard == [("VI_1", State.MASTER), ("VI_2", State.FAULT), ("VI_1", State.BACKUP)]


def test_new_daemon_message_carries_every_option() -> None:
    daemon = SyncDaemon(IP_VS_STATE_MASTER, "eth1", 7, 1400, 9000, 3, ip_address("239.1.2.3"))
    msg = _daemonmsg()
    msg["cmd"], msg["version"] = 9, 1
    attrs = [("IPVS_DAEMON_ATTR_STATE", daemon.state), *daemon.start_attrs()]
    msg["attrs"] = [("IPVS_CMD_ATTR_DAEMON", {"attrs": attrs})]
    msg.encode()
    back = _daemonmsg(msg.data)
    back.decode()
    nested = back.get_attr("IPVS_CMD_ATTR_DAEMON")
    got = {name: nested.get_attr(name) for name, _ in attrs}
    assert got == {
        "IPVS_DAEMON_ATTR_STATE": 1,
        "IPVS_DAEMON_ATTR_MCAST_IFN": "eth1",
        "IPVS_DAEMON_ATTR_SYNC_ID": 7,
        "IPVS_DAEMON_ATTR_SYNC_MAXLEN": 1400,
        "IPVS_DAEMON_ATTR_MCAST_PORT": 9000,
        "IPVS_DAEMON_ATTR_MCAST_TTL": 3,
        "IPVS_DAEMON_ATTR_MCAST_GROUP": "239.1.2.3",
    }
    v6 = SyncDaemon(2, "eth1", group=ip_address("ff02::81")).start_attrs()
    assert ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ff02::81") in v6
    assert [a for a, _ in SyncDaemon(2, "eth1").start_attrs()] == [
        "IPVS_DAEMON_ATTR_MCAST_IFN",
        "IPVS_DAEMON_ATTR_SYNC_ID",
    ]  # unset options are left to the kernel's defaults (port 8848, group 224.0.0.81)


def _runtime(config: Config) -> Any:
    return SimpleNamespace(config=config, executor=None, tasks=None, engine=None)


def test_built_only_with_the_keyword_and_vrrp_instances() -> None:
    inst = InstanceConfig(name="VI_1", interface="eth0", vrid=51, priority=100)
    syncd = GlobalDefs(lvs_sync_daemon=LvsSyncDaemonSpec("eth0", "VI_1"))
    with_it = Config(global_defs=syncd, instances=(inst,))
    assert [s.name for s in lvs.build(_runtime(with_it))] == ["lvs_syncd"]
    assert lvs.build(_runtime(replace(with_it, global_defs=GlobalDefs()))) == []
    # -C drops the VRRP instances: keepalived's checker process runs no sync daemon.
    assert lvs.build(_runtime(replace(with_it, instances=()))) == []
