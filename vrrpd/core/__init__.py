"""The pure, sans-IO VRRP core: time in, ordered actions out."""
