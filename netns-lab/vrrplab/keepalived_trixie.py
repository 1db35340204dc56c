"""keepalived 2.3 from Debian 13 (trixie) as a second real peer, run in a chroot.

Debian 12's keepalived 2.2.7, the one `make test` installs, predates `v3_checksum_as_v2` (2.2.8),
the RFC 9568 form of the VRRPv3 IPv4 checksum (no pseudo-header). `make keepalived-trixie`
(part of `make test`) puts Debian 13's keepalived package and its dependencies into
.cache/keepalived-trixie with debootstrap: Debian's own binaries, nothing compiled here.

The lab runs it as implementation "keepalived-trixie": `ip netns exec` gives the process its own
mount namespace, where a shell mounts /proc, /sys and /dev and the lab's work dir (at the same
path, on a private tmpfs over the chroot's /tmp) into the chroot, then execs keepalived with the
usual command line. Those mounts vanish with the process; the PID the lab tracks is keepalived's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / ".cache" / "keepalived-trixie"
READY = ROOT / ".vrrpd-ready"
MIRROR = "http://deb.debian.org/debian"
# Why a test that needs it skips where it has not been prepared (CI's `make test` prepares it).
NOT_PREPARED = (
    "Debian 13's keepalived is not prepared: run `make keepalived-trixie` (make test does)"
)

# $1 the chroot, $2 the lab work dir (under /tmp), then keepalived's argv.
_ENTER = (
    "root=$1; dir=$2; shift 2; "
    'mount -t tmpfs tmpfs "$root/tmp" && mkdir -p "$root$dir" && '
    'mount --bind "$dir" "$root$dir" && mount -t proc proc "$root/proc" && '
    'mount --bind /sys "$root/sys" && mount --bind /dev "$root/dev" && '
    'exec chroot "$root" "$@"'
)


def available() -> bool:
    return READY.exists()


def argv(keepalived: list[str]) -> list[str]:
    """The lab's argv template for keepalived (with `{workdir}` for the lab's work dir)."""
    return ["sh", "-c", _ENTER, "sh", str(ROOT), "{workdir}", *keepalived]


def prepare() -> int:
    """debootstrap once; a finished tree is marked READY, a broken one is started over."""
    if available():
        return 0
    subprocess.run(["rm", "-rf", str(ROOT)], check=True)
    ROOT.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["debootstrap", "--variant=minbase", "--include=keepalived", "trixie", str(ROOT), MIRROR]
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        return done.returncode
    ask = ["chroot", str(ROOT), "keepalived", "--version"]
    version = subprocess.run(ask, check=False, capture_output=True, text=True)
    print((version.stdout + version.stderr).splitlines()[0], flush=True)
    READY.write_text(version.stderr or version.stdout)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: keepalived_trixie.py prepare")
    sys.exit(prepare())
