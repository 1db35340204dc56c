"""LvsService.reload (in the VM): a changed real-server list reaches IPVS as its differences only.

The daemon's SIGHUP handler belongs to the reload work (issue 6); until it calls
`LvsService.reload`, this test drives the service itself, in the director's namespace of a real
lab, with real checkers against real web servers and the real kernel table. The runtime it needs
is only a holder for the config and the -I flag.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from vm_guest import Listener, services
from vrrplab import Lab
from vrrplab.netns import in_netns

from vrrpd.config.loader import check_config
from vrrpd.config.model import Config
from vrrpd.io.files import FileSource
from vrrpd.io.ipvs import Changes
from vrrpd.runtime.lvs import LvsService

RS = """    real_server 192.0.2.{host} 80 {{
        weight {weight}
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
"""


def conf(path: Path, servers: dict[str, list[tuple[int, int]]]) -> Config:
    """A keepalived.conf with one virtual server per VIP (`host, weight` real servers), parsed
    by the real loader."""
    text = "global_defs {\n    router_id director\n}\n"
    for vip, pool in servers.items():
        text += f"virtual_server {vip} 80 {{\n    delay_loop 1\n    lvs_sched rr\n"
        text += "    lvs_method NAT\n    protocol TCP\n"
        text += "".join(RS.format(host=h, weight=w) for h, w in pool) + "}\n"
    path.write_text(text)
    result = check_config(str(path), FileSource(), "director")
    assert result.config is not None and not result.errors, result.problems
    return result.config


async def settle(ns: str, want: dict[str, list[str]], timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while services(ns) != want:
        if loop.time() > deadline:
            raise AssertionError(f"ipvsadm: {services(ns)}\nwanted: {want}")
        await asyncio.sleep(0.2)


async def settle_applier(lvs: LvsService, mark: int, timeout: float = 30) -> None:
    """Until an apply after `mark` is recorded and none is pending."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(lvs.recent) <= mark or lvs._dirty.is_set():
        if loop.time() > deadline:
            raise AssertionError(f"no apply recorded after the reload: {list(lvs.recent)}")
        await asyncio.sleep(0.05)


def merged(changes: list[Changes]) -> Changes:
    out = Changes()
    for c in changes:
        out.added += c.added
        out.edited += c.edited
        out.removed += c.removed
        out.errors += c.errors
    return out


def test_reload_applies_only_the_differences(tmp_path: Path) -> None:
    with Lab(routers=4, tag="rld", workdir=tmp_path) as lab:
        web = {n.name: Listener(n.ns, n.name, tmp_path / "www") for n in lab.routers[1:]}
        for listener in web.values():
            listener.start()
        try:
            with in_netns(lab.routers[0].ns):
                asyncio.run(_scenario(lab.routers[0].ns, web, tmp_path))
        finally:
            for listener in web.values():
                listener.stop()


async def _scenario(ns: str, web: dict[str, Listener], tmp: Path) -> None:
    before = conf(tmp / "a.conf", {"192.0.2.100": [(12, 1), (13, 1)], "192.0.2.101": [(12, 1)]})
    runtime = SimpleNamespace(config=before, tasks=None, executor=None, release_ipvs=True)
    lvs = LvsService(runtime)  # type: ignore[arg-type]
    await lvs.start()
    try:
        await settle(
            ns,
            {
                "TCP 192.0.2.100:80 rr": ["192.0.2.12:80 Masq 1", "192.0.2.13:80 Masq 1"],
                "TCP 192.0.2.101:80 rr": ["192.0.2.12:80 Masq 1"],
            },
        )
        web["r3"].stop()  # 192.0.2.13 fails before the reload: it must stay out after it
        await settle(
            ns,
            {
                "TCP 192.0.2.100:80 rr": ["192.0.2.12:80 Masq 1"],
                "TCP 192.0.2.101:80 rr": ["192.0.2.12:80 Masq 1"],
            },
        )
        mark = len(lvs.recent)
        after = conf(
            tmp / "b.conf",
            {"192.0.2.100": [(12, 3), (13, 1), (14, 1)], "192.0.2.102": [(12, 1)]},
        )
        await lvs.reload(after)
        want = {
            "TCP 192.0.2.100:80 rr": ["192.0.2.12:80 Masq 3", "192.0.2.14:80 Masq 1"],
            "TCP 192.0.2.102:80 rr": ["192.0.2.12:80 Masq 1"],
        }
        await settle(ns, want)
        # The kernel shows the last change before the apply that made it has returned and
        # recorded itself: let it finish.
        await settle_applier(lvs, mark)
        done = merged(list(lvs.recent)[mark:])
        assert sorted(done.edited) == ["[192.0.2.12]:tcp:80 of [192.0.2.100]:tcp:80"]
        assert sorted(done.added) == [
            "[192.0.2.102]:tcp:80",
            "[192.0.2.12]:tcp:80 of [192.0.2.102]:tcp:80",
            "[192.0.2.14]:tcp:80 of [192.0.2.100]:tcp:80",
        ]
        assert done.removed == ["[192.0.2.101]:tcp:80"]
        assert not done.errors
        web["r3"].start()  # the carried-over dead server comes back through its new checker
        want["TCP 192.0.2.100:80 rr"].insert(1, "192.0.2.13:80 Masq 1")
        await settle(ns, want)
    finally:
        await lvs.stop()
    assert services(ns) == {}
