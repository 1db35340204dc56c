"""One VM boot per pytest session: the guest runs every selected `ipvs` test, the host reports them.

The host-side pytest collects `tests/vm/test_ipvs*.py` as usual but never runs those tests
itself: on the first one it boots the VM (`vm_run`) with a script that runs the guest's own
pytest on exactly the selected node ids, with the same checkout and the same `.venv` (the host's
`/` is the guest's root). The guest serialises each test report (pytest's own
`pytest_report_to_serializable`, as xdist does) as one JSON line into the shared work dir; the
host reads them as they appear and hands them to its reporter, so each test shows its own
outcome, traceback and duration, live. A test with no report when the guest powers off fails with
the guest's output tail.
"""

from __future__ import annotations

import compileall
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vm_image import REPO, Image
from vm_run import STAGE2, qemu_argv

GUEST_DIR = "/run/vmout"
REPORTS = "reports.jsonl"
TAIL_CHARS = 6000


def guest_script(nodeids: list[str]) -> str:
    """The guest's pytest over the host's selection; -p no:cacheprovider: the checkout is
    read-only in the guest."""
    args = " ".join(_quote(n) for n in nodeids)
    return (
        f"cd {_quote(str(REPO))}\n"
        f"export VRRPD_VM_REPORTS={GUEST_DIR}/{REPORTS}\n"
        f"exec {_quote(sys.executable)} -m pytest -p no:cacheprovider -q -rfE "
        f"--basetemp=/tmp/pytest-vm {args}\n"
    )


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def precompile() -> None:
    """Byte-compile the checkout on the host: the guest cannot write __pycache__, and compiling
    under software emulation would cost seconds in every Python process it starts."""
    for sub in ("vrrpd", "tests", "netns-lab"):
        compileall.compile_dir(str(REPO / sub), quiet=1, workers=1)


class Batch:
    """The running VM and the reports it has written so far."""

    def __init__(self, image: Image, nodeids: list[str], timeout: float) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="vrrpd-vm-"))
        self.nodeids = nodeids
        self.timeout = timeout
        self.reports: dict[str, list[dict[str, Any]]] = {}
        self._offset = 0
        precompile()
        (self.workdir / "stage2.sh").write_text(STAGE2)
        (self.workdir / "script.sh").write_text(guest_script(nodeids))
        self.started = time.monotonic()
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            qemu_argv(image, self.workdir, memory_mb=768, cpus=2),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.rc: int | None = None

    def wait_for(self, nodeid: str) -> list[dict[str, Any]] | None:
        """The serialised reports of `nodeid` once its teardown is reported; None if the guest
        stopped (or timed out) before that."""
        while True:
            self._read()
            got = self.reports.get(nodeid, [])
            if any(r.get("when") == "teardown" for r in got):
                return got
            if not self.running():
                self._read()
                got = self.reports.get(nodeid, [])
                return got if got else None
            time.sleep(0.2)

    def running(self) -> bool:
        if self.proc is None:
            return False
        if self.proc.poll() is not None:
            self._reap()
            return False
        if time.monotonic() - self.started > self.timeout:
            self.stop(f"timed out after {self.timeout:.0f} s")
            return False
        return True

    def stop(self, why: str = "") -> None:
        """Kill QEMU (our child, by PID) if it still runs; idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.note = why
        self._reap()

    def finish(self, grace_s: float = 60.0) -> None:
        """After the last test: let the guest's pytest end and power off, then reap QEMU."""
        deadline = time.monotonic() + grace_s
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.stop("still running after the last test")

    def cleanup(self) -> None:
        """Remove the work dir after a clean run; keep it (named in failures) otherwise."""
        self.stop()
        if self.rc == 0:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _reap(self) -> None:
        if self.proc is None:
            return
        _, err = self.proc.communicate()
        self.qemu_stderr = err.decode(errors="replace") if err else ""
        self.proc = None
        rc_file = self.workdir / "rc"
        self.rc = int(rc_file.read_text().strip()) if rc_file.is_file() else None
        self.seconds = time.monotonic() - self.started

    def _read(self) -> None:
        path = self.workdir / REPORTS
        try:
            with open(path) as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits
        self._offset += len(complete.encode())
        for line in complete.splitlines():
            data = json.loads(line)
            self.reports.setdefault(data.get("nodeid", ""), []).append(data)

    def diagnosis(self) -> str:
        """What the guest printed (its pytest output, else the console), for a failure message."""
        parts = [f"VM work dir: {self.workdir}", f"guest exit status: {self.rc}"]
        if getattr(self, "note", ""):
            parts.append(f"harness: {self.note}")
        output = _tail(self.workdir / "output")
        console = _tail(self.workdir / "console.log")
        if output:
            parts.append("guest output (tail):\n" + output)
        if console and not output:
            parts.append("guest console (tail):\n" + console)
        if getattr(self, "qemu_stderr", ""):
            parts.append("qemu: " + self.qemu_stderr[-TAIL_CHARS:])
        return "\n".join(parts)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-TAIL_CHARS:]
    except OSError:
        return ""
