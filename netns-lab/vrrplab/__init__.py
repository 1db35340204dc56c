"""vrrplab: network-namespace labs for vrrpd and keepalived, failure injection, measurements."""

from vrrplab.netns import LabError, in_netns, netns_available, wait_until
from vrrplab.topo import Lab, Node

__all__ = ["Lab", "LabError", "Node", "in_netns", "netns_available", "wait_until"]
