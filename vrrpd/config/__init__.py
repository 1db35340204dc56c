"""Configuration: keepalived.conf and YAML front-ends into one frozen model."""
