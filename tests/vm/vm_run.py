"""Boot the IPVS test VM once, run one shell script inside it, return its status and output.

QEMU runs in software (TCG): this host's /dev/kvm is PVM and cannot run a stock kernel
(../../shared/reference/ipvs-vm.md). The guest has no NIC at all, so nothing it does can leave
it; its root is the host's `/` over 9p, read-only, so the checkout, `.venv` and the host's
tools (python3, ip, ipvsadm, busybox) are there at the same paths. The only writable host
directory is the per-boot work dir, mounted at `/run/vmout` in the guest: the script, its output,
its exit status and anything the script wants to hand back go through it.

`run_in_vm(image, script, workdir, timeout)` blocks until the guest powers off, or kills QEMU
(by the PID it started) at the deadline and reports the timeout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vm_image import Image

GUEST_DIR = "/run/vmout"
QEMU = "qemu-system-x86_64"

# Stage 2, after switch_root: a plain environment, loopback up, the script, then power off.
STAGE2 = f"""#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
export PYTHONDONTWRITEBYTECODE=1 VRRPD_IN_VM=1
hostname vrrpd-vm
ip link set lo up
cd {GUEST_DIR}
sh {GUEST_DIR}/script.sh > {GUEST_DIR}/output 2>&1
echo $? > {GUEST_DIR}/rc.tmp
mv {GUEST_DIR}/rc.tmp {GUEST_DIR}/rc
sync
busybox poweroff -f
"""


@dataclass(frozen=True)
class VmResult:
    """`rc` is the script's exit status, None when the guest never reported one."""

    rc: int | None
    output: str
    console: str
    seconds: float


def qemu_argv(image: Image, workdir: Path, memory_mb: int, cpus: int) -> list[str]:
    """q35 + the PVH vmlinux; no NIC, no display, serial console to a file."""
    append = (
        "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off rdinit=/init "
        f"vm.kroot={image.kroot}"
    )
    return [
        QEMU, "-M", "q35", "-accel", "tcg,tb-size=64", "-cpu", "max",
        "-m", f"{memory_mb}M", "-smp", str(cpus),
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-serial", f"file:{workdir / 'console.log'}",
        "-kernel", str(image.vmlinux), "-initrd", str(image.initrd), "-append", append,
        "-fsdev", "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=root,mount_tag=hostroot",
        "-fsdev", f"local,id=out,path={workdir},security_model=none",
        "-device", "virtio-9p-pci,fsdev=out,mount_tag=vmout",
    ]  # fmt: skip


def run_in_vm(
    image: Image,
    script: str,
    workdir: Path,
    *,
    timeout: float = 300.0,
    memory_mb: int = 512,
    cpus: int = 2,
) -> VmResult:
    """Boot, run `script` with /bin/sh as root in the guest, power off; never leaves QEMU behind."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("rc", "rc.tmp", "output", "console.log"):
        (workdir / stale).unlink(missing_ok=True)
    (workdir / "stage2.sh").write_text(STAGE2)
    (workdir / "script.sh").write_text(script)
    if shutil.which(QEMU) is None:
        raise FileNotFoundError(f"{QEMU} not found: install qemu-system-x86")
    started = time.monotonic()
    proc = subprocess.Popen(
        qemu_argv(image, workdir, memory_mb, cpus),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        qemu_out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # our own child, by PID
        qemu_out, _ = proc.communicate()
    seconds = time.monotonic() - started
    rc_file = workdir / "rc"
    rc = int(rc_file.read_text().strip()) if rc_file.is_file() else None
    console = _read(workdir / "console.log")
    if qemu_out:
        console += "\n[qemu] " + qemu_out.decode(errors="replace")
    if rc is None and seconds >= timeout:
        console += f"\n[harness] timed out after {timeout:.0f} s; QEMU killed"
    return VmResult(rc, _read(workdir / "output"), console, seconds)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def main(argv: list[str]) -> int:
    """`python tests/vm/vm_run.py 'ipvsadm -Ln'`: one script in a fresh VM, for poking around."""
    from vm_image import cached

    image = cached()
    if image is None or len(argv) != 2:
        print("usage: vm_run.py SCRIPT (after `python tests/vm/vm_image.py prepare`)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="vrrpd-vm-"))
    result = run_in_vm(image, argv[1], workdir)
    print(result.output, end="")
    if result.rc != 0:
        print(result.console[-3000:])
        print(f"[vm] work dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"[vm] rc {result.rc} after {result.seconds:.1f} s")
    return 1 if result.rc is None else result.rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
