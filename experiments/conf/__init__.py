"""Hydra YAML configs: world/, regime/, experiment/ groups and the primary config."""
