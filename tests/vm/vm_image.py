"""The IPVS test VM's kernel and initramfs, built once from Debian packages and cached.

The CI kernel has no IPVS (CONFIG_IP_VS is not set), so the IPVS tests boot Debian's own kernel
under QEMU (../../shared/reference/ipvs-vm.md, "option B"). This module prepares what that boot
needs, from packages only: the `linux-image-*` package `linux-image-amd64` depends on is fetched
with `apt-get download` and unpacked with `dpkg -x` (never installed: no initramfs-tools, the
host's /boot and /lib/modules stay untouched), `depmod` builds its `modules.dep`, the bzImage's
XZ payload becomes an ELF `vmlinux` (QEMU boots it through the PVH entry, a few seconds faster
than the bzImage), and a small newc cpio holds busybox-static, `/init` and the virtio/9p/overlay
modules the guest needs to mount the host's `/` read-only.

Everything lands in `.cache/ipvs-vm/<package>/` inside the checkout (git-ignored); a `ready`
file marks a complete build, and an flock keeps two test runs from building at once.

    python tests/vm/vm_image.py prepare     # what `make test` runs (needs apt, so root in CI)
    python tests/vm/vm_image.py show        # the cached image, or why there is none
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("VRRPD_VM_CACHE", REPO / ".cache" / "ipvs-vm"))
META_PACKAGE = "linux-image-amd64"
BUSYBOX = "/bin/busybox"
# Loaded in /init, dependencies first: virtio PCI transport, the 9p filesystem over it, overlay
# for the RAM-backed writable directories.
INIT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
XZ_MAGIC = b"\xfd7zXZ\x00"


class ImageError(RuntimeError):
    """The VM image cannot be built or found; the message says what is missing."""


@dataclass(frozen=True)
class Image:
    """A bootable kernel; `kroot` is the unpacked package, whose lib/modules the guest binds."""

    kver: str
    kroot: Path
    vmlinux: Path
    initrd: Path


def kernel_package() -> str:
    """The ABI-versioned package behind `linux-image-amd64` (renamed with every ABI bump)."""
    try:
        out = subprocess.run(
            ["apt-cache", "depends", META_PACKAGE], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ImageError(f"apt-cache cannot resolve {META_PACKAGE}: {exc}") from exc
    for line in out.splitlines():
        word = line.split(":", 1)[-1].strip()
        if line.strip().startswith("Depends:") and word.startswith("linux-image-"):
            return word
    raise ImageError(f"{META_PACKAGE} depends on no linux-image-* package (apt-get update?)")


def cached() -> Image | None:
    """Any complete image in the cache, without asking apt (works offline and unprivileged)."""
    if not CACHE.is_dir():
        return None
    for ready in sorted(CACHE.glob("*/ready"), reverse=True):
        image = _load(ready.parent)
        if image is not None:
            return image
    return None


def prepare() -> Image:
    """The cached image for the current kernel package, building it first if needed.

    Stale or missing package lists (a fresh container, a security update that replaced the
    package on the mirror) get one `apt-get update` and a second try."""
    try:
        return _prepare()
    except ImageError as first:
        try:
            _run(["apt-get", "update", "-qq"])
        except ImageError:
            raise first from None
        return _prepare()


def _prepare() -> Image:
    package = kernel_package()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run waits for our build, then reuses it
        image = _load(CACHE / package)
        if image is None:
            image = _build(package, CACHE / package)
            for old in CACHE.iterdir():  # images of kernels apt no longer offers: ~0.5 GB each
                if old.is_dir() and old.name != package:
                    shutil.rmtree(old, ignore_errors=True)
    return image


def _load(where: Path) -> Image | None:
    if not (where / "ready").is_file():
        return None
    kver, _, stamp = (where / "ready").read_text().strip().partition("\n")
    image = Image(kver, where / "kroot", where / f"vmlinux-{kver}", where / "initrd.cpio")
    if not (image.vmlinux.is_file() and image.kroot.is_dir()):
        return None
    if stamp != _init_stamp() or not image.initrd.is_file():  # /init changed: rebuild only it
        modules = image.kroot / "lib" / "modules" / kver
        try:
            image.initrd.write_bytes(initramfs(modules, kver))
            (where / "ready").write_text(f"{kver}\n{_init_stamp()}\n")
        except (OSError, ImageError):
            return None  # not ours to rewrite (unprivileged): `prepare` as root rebuilds it
    return image


def _init_stamp() -> str:
    """Which /init an initrd was built with (the cache outlives changes to INIT)."""
    return hashlib.sha256((INIT + " ".join(INIT_MODULES)).encode()).hexdigest()[:16]


def _build(package: str, where: Path) -> Image:
    tmp = where.with_name(where.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    deb = _download(package, tmp)
    _run(["dpkg", "-x", str(deb), str(tmp / "kroot")])
    shutil.rmtree(deb.parent)
    kvers = [p.name for p in (tmp / "kroot" / "lib" / "modules").iterdir()]
    if len(kvers) != 1:
        raise ImageError(f"{package}: expected one lib/modules/<version>, found {kvers}")
    kver = kvers[0]
    _run(["depmod", "-b", str(tmp / "kroot"), kver])  # the .deb ships no modules.dep
    vmlinuz = tmp / "kroot" / "boot" / f"vmlinuz-{kver}"
    (tmp / f"vmlinux-{kver}").write_bytes(extract_vmlinux(vmlinuz.read_bytes()))
    modules = tmp / "kroot" / "lib" / "modules" / kver
    (tmp / "initrd.cpio").write_bytes(initramfs(modules, kver))
    (tmp / "ready").write_text(f"{kver}\n{_init_stamp()}\n")
    shutil.rmtree(where, ignore_errors=True)
    tmp.rename(where)
    image = _load(where)
    assert image is not None
    return image


def _download(package: str, into: Path) -> Path:
    # apt drops root to _apt for downloads: the directory must be writable by that user.
    dl = Path(tempfile.mkdtemp(prefix="vrrpd-kdl-", dir=into))
    dl.chmod(0o777)
    _run(["apt-get", "download", "-q", package], cwd=dl)
    debs = list(dl.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise ImageError(f"apt-get download {package} left {debs} in {dl}")
    return debs[0]


def _run(argv: list[str], cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageError(f"{argv[0]}: {exc} (is it installed? `make test` installs it)") from exc
    if proc.returncode != 0:
        raise ImageError(f"{' '.join(argv)} -> rc {proc.returncode}: {proc.stderr.strip()}")


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage: Debian compresses the payload with XZ."""
    at = bzimage.find(XZ_MAGIC)
    if at < 0:
        raise ImageError("no XZ payload in the bzImage")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[at:])
    if not elf.startswith(b"\x7fELF"):
        raise ImageError("the bzImage payload is not an ELF kernel")
    return elf


def module_order(modules: Path, wanted: tuple[str, ...]) -> list[str]:
    """Paths (relative to `modules`) of `wanted` and their dependencies, dependencies first."""
    deps: dict[str, list[str]] = {}
    for line in (modules / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
    by_name = {Path(p).name.split(".ko")[0].replace("-", "_"): p for p in deps}
    order: list[str] = []

    def add(path: str) -> None:
        if path in order:
            return
        for dep in reversed(deps[path]):  # modules.dep lists the deepest dependency last
            add(dep)
        order.append(path)

    for name in wanted:
        if name not in by_name:
            raise ImageError(f"module {name} is not in {modules} (built in?)")
        add(by_name[name])
    return order


def initramfs(modules: Path, kver: str) -> bytes:
    """A newc cpio: busybox, /init, and the modules /init loads."""
    if not Path(BUSYBOX).is_file():
        raise ImageError(f"{BUSYBOX} missing: install busybox-static")
    order = module_order(modules, INIT_MODULES)
    archive = Cpio()
    for d in ("bin", "dev", "proc", "sys", "mnt", "newroot", "modules"):
        archive.add_dir(d)
    archive.add_file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
    for path in order:
        archive.add_file(f"modules/{Path(path).name}", (modules / path).read_bytes(), 0o644)
    names = " ".join(Path(p).name for p in order)
    archive.add_file("init", INIT.replace("@MODULES@", names).replace("@KVER@", kver).encode())
    return archive.finish()


class Cpio:
    """The kernel's initramfs format (newc, no compression)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes) -> None:
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        self.ino += 1
        self.out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self.out.write(name.encode() + b"\0")
        self._pad()
        self.out.write(data)
        self._pad()

    def _pad(self) -> None:
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def add_dir(self, name: str) -> None:
        self._entry(name, 0o040755, b"")

    def add_file(self, name: str, data: bytes, perm: int = 0o755) -> None:
        self._entry(name, 0o100000 | perm, data)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"")
        return self.out.getvalue()


# Stage 1 in the initramfs: mount the host's / read-only over 9p, give it RAM-backed writable
# /etc /var /root /usr/lib (overlays; /root may hold the venv's Python) and /tmp /run (tmpfs),
# bind the unpacked kernel's modules where modprobe looks, then switch_root (not chroot: with
# chroot the kernel's module auto-loading runs modprobe inside the initramfs, and `ip link add
# type veth` fails). Stage 2 is /run/vmout/stage2.sh, written by the host for each boot.
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in @MODULES@; do insmod /modules/$m || echo "vm-init: insmod $m failed"; done
fail() { echo "vm-init: $*"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /newroot \
  || fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 tmpfs /mnt
# /tmp is an overlay too, not a bare tmpfs: a checkout or image cache under the host's /tmp (a
# CI work dir, say) must stay visible in the guest.
for d in etc var root usr/lib tmp; do
  u=/mnt/$(echo $d | tr / _)
  mkdir -p $u/up $u/work
  mount -t overlay overlay -o lowerdir=/newroot/$d,upperdir=$u/up,workdir=$u/work /newroot/$d \
    || fail "overlay on /$d"
done
mount -t tmpfs -o mode=755 tmpfs /newroot/run
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
kroot=$(sed -n 's/.*vm.kroot=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /newroot/usr/lib/modules/@KVER@
mount --bind /newroot$kroot/lib/modules/@KVER@ /newroot/usr/lib/modules/@KVER@ \
  || fail "cannot bind the kernel modules from $kroot"
mkdir -p /newroot/run/vmout
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmout /newroot/run/vmout \
  || fail "cannot mount the vmout share"
umount /proc /sys /dev
exec switch_root /newroot /bin/sh /run/vmout/stage2.sh
"""


def main(argv: list[str]) -> int:
    try:
        if argv[1:] == ["prepare"]:
            image = prepare()
        elif argv[1:] == ["show"]:
            found = cached()
            if found is None:
                print(f"no IPVS VM image in {CACHE}; run `python {argv[0]} prepare`")
                return 1
            image = found
        else:
            print(f"usage: {argv[0]} prepare|show", file=sys.stderr)
            return 2
    except ImageError as exc:
        print(f"ipvs vm image: {exc}", file=sys.stderr)
        return 1
    print(f"ipvs vm image: kernel {image.kver}, {image.vmlinux}, {image.initrd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
