"""Thin adapters to the OS: raw sockets, netlink, ARP/NA, scripts, notify."""

from vrrpd.io import _pyroute2

_pyroute2.install()
