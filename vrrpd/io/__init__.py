"""Thin adapters to the OS: raw sockets, netlink, ARP/NA, scripts, notify."""
