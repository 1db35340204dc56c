# vrrpd: `make test` installs what the tests need and runs the whole suite; `make lab` runs the
# failover rehearsal in network namespaces. Both expect root on Debian (CI is root).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Debian packages the tests and the lab use: keepalived as a real peer, nginx and MariaDB behind
# the VIPs in the examples, tcpdump/arping/ndisc6 to watch the wire from the client namespace.
DEB_PKGS := python3-venv python3-pip iproute2 iputils-ping arping ndisc6 tcpdump keepalived \
            nginx-light mariadb-server mariadb-client curl procps psmisc kmod \
            nftables

# Debian 13 keepalived (2.3) in a chroot under .cache/: netns-lab/vrrplab/keepalived_trixie.py.
DEB_PKGS += debootstrap

# The IPVS tests boot Debian's own kernel under QEMU (tests/vm/, the CI kernel has no IPVS):
# QEMU, busybox-static for the initramfs, ipvsadm as an independent check inside the guest.
DEB_PKGS += qemu-system-x86 busybox-static ipvsadm

.PHONY: test lint unit deps debs venv vm-image keepalived-trixie lab bench clean

test: deps lint vm-image keepalived-trixie
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check vrrpd tests netns-lab
	$(VENV)/bin/ruff format --check vrrpd tests netns-lab
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: venv
	$(PY) -m pytest -q tests/unit tests/property

deps: debs venv

# The kernel package is fetched with `apt-get download` and unpacked (never installed), then
# the initramfs is built; all cached in .cache/ipvs-vm/ until the kernel package changes.
vm-image: debs venv
	$(PY) tests/vm/vm_image.py prepare

# Debian 13's keepalived (2.3: v3_checksum_as_v2) in a chroot, as a second real peer; built once.
keepalived-trixie: debs venv
	$(PY) netns-lab/vrrplab/keepalived_trixie.py prepare

# Install only what is missing, so a second `make test` does not touch apt.
debs:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make: need root to install:$$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

lab: deps
	$(PY) netns-lab/lab.py rehearse

bench: deps
	$(PY) netns-lab/bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
