"""IPVS tests in a VM: host side (boot once, relay reports) and guest side (fixtures, reports).

The CI kernel has no IPVS, so every test in `tests/vm/test_ipvs*.py` (marked `ipvs`) runs
inside a QEMU guest booted from Debian's own kernel (`vm_image`, `vm_run`, `vm_batch`;
../../shared/reference/ipvs-vm.md). On the host, this conftest takes over the run protocol of
those items: the first one boots the VM with the whole selection, and each item then reports
what the guest reported for it. In the guest (`VRRPD_IN_VM=1`), the same files run for real,
and this conftest writes each report to the shared directory.

Missing QEMU or kernel image: a failure when running as root or with VRRPD_VM_REQUIRED=1
(`make test`, CI), a skip with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LAB_DIR = HERE.parents[1] / "netns-lab"
for extra in (HERE, LAB_DIR):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

IN_VM = os.environ.get("VRRPD_IN_VM") == "1"
BATCH_TIMEOUT_S = float(os.environ.get("VRRPD_VM_TIMEOUT", "900"))
BATCH = pytest.StashKey["object"]()
_CONFIG: list[pytest.Config] = []  # for the report hook, which gets no config
SELECTED = pytest.StashKey["list[str]"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ipvs: runs inside the IPVS test VM (tests/vm)")
    _CONFIG[:] = [config]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_vm_test(item):
            item.add_marker(pytest.mark.ipvs)


def _is_vm_test(item: pytest.Item) -> bool:
    path = Path(str(item.fspath))
    return path.parent == HERE and path.name.startswith("test_ipvs")


# -- guest side ----------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In the guest: one JSON line per report, for the host to relay."""
    path = os.environ.get("VRRPD_VM_REPORTS")
    if not IN_VM or not path:
        return
    config = _CONFIG[0]
    data = config.hook.pytest_report_to_serializable(config=config, report=report)
    with open(path, "a") as fh:
        fh.write(json.dumps(data) + "\n")


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh, uniquely named network namespace in the guest (IPVS state is per namespace)."""
    from vrrplab.netns import create_ns, delete_ns, unique_prefix

    name = f"{unique_prefix()}-ipvs"
    create_ns(name)
    try:
        yield name
    finally:
        delete_ns(name)


# -- host side -----------------------------------------------------------------------------


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[SELECTED] = [i.nodeid for i in session.items if _is_vm_test(i)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """On the host, an `ipvs` item reports what the guest reported for it."""
    if IN_VM or not _is_vm_test(item):
        return None
    config = item.config
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in _guest_reports(item):
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    if nextitem is None or not _is_vm_test(nextitem):
        batch = config.stash.get(BATCH, None)
        if batch is not None and hasattr(batch, "finish"):
            batch.finish()
    return True


def _guest_reports(item: pytest.Item) -> list[pytest.TestReport]:
    config = item.config
    batch = config.stash.get(BATCH, None)
    if batch is None:
        batch = _start_batch(config)
        config.stash[BATCH] = batch
    if isinstance(batch, str):  # the VM could not start: skip or fail every item with why
        return _synthetic(item, batch, skip=not _required())
    found = batch.wait_for(item.nodeid)
    if not found:
        why = f"no result from the VM for this test\n{batch.diagnosis()}"
        return _synthetic(item, why, skip=False)
    reports = [config.hook.pytest_report_from_serializable(config=config, data=d) for d in found]
    if reports[-1].when != "teardown":  # the guest died in the middle of this test
        why = f"the VM stopped during this test\n{batch.diagnosis()}"
        keywords = dict.fromkeys(item.keywords, 1)
        reports.append(
            pytest.TestReport(item.nodeid, item.location, keywords, "failed", why, "teardown")
        )
    return [r for r in reports if r is not None]


def _required() -> bool:
    return os.geteuid() == 0 or os.environ.get("VRRPD_VM_REQUIRED") == "1"


def _start_batch(config: pytest.Config) -> object:
    """The running batch, or a string saying why there is none."""
    import vm_batch
    import vm_image

    if os.geteuid() != 0 and not _required():
        # The guest reads the host's files with our rights: /root's venv, ip netns, ... fail.
        return "needs root (the guest sees the host's / with the invoking user's rights)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is missing (make test installs qemu-system-x86)"
    image = vm_image.cached()
    if image is None and os.geteuid() == 0:
        try:
            image = vm_image.prepare()
        except vm_image.ImageError as exc:
            return f"cannot build the IPVS VM image: {exc}"
    if image is None:
        return f"no IPVS VM image in {vm_image.CACHE} (run: python tests/vm/vm_image.py prepare)"
    return vm_batch.Batch(image, config.stash[SELECTED], BATCH_TIMEOUT_S)


def _synthetic(item: pytest.Item, why: str, skip: bool) -> list[pytest.TestReport]:
    """setup/call/teardown reports for an item the guest never ran."""
    keywords = dict.fromkeys(item.keywords, 1)
    if skip:
        path, line, _ = item.location
        longrepr: object = (str(path), (line or 0) + 1, f"Skipped: IPVS VM: {why}")
        outcome = "skipped"
    else:
        longrepr = f"IPVS VM: {why}"
        outcome = "failed"
    setup = pytest.TestReport(item.nodeid, item.location, keywords, outcome, longrepr, "setup")
    teardown = pytest.TestReport(item.nodeid, item.location, keywords, "passed", None, "teardown")
    return [setup, teardown]


def pytest_unconfigure(config: pytest.Config) -> None:
    batch = config.stash.get(BATCH, None)
    if batch is not None and hasattr(batch, "cleanup"):
        batch.cleanup()  # never leave QEMU behind, even after Ctrl-C
