"""vrrpd: a keepalived-compatible VRRP (RFC 3768, RFC 5798 / RFC 9568) high-availability agent."""

__version__ = "0.1.0"
