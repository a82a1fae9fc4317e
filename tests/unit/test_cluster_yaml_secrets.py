"""ray-cluster.yaml is public: it must not ship a JWT secret, and it says where one comes from."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "ray-cluster.yaml"


def all_commands(config: dict) -> list[str]:
    return [command for key, value in config.items() if key.endswith("_commands") for command in value]


def test_no_jwt_secret_value_is_shipped() -> None:
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    commands = all_commands(config)
    assert commands, "the file has setup commands"
    # The only VODRAY_JWT_SECRET in a command is filled in from the secret manager at setup.
    assignments = [c for c in commands if "VODRAY_JWT_SECRET" in c]
    assert assignments and all("aws ssm get-parameter" in c and "umask 077" in c for c in assignments)
    assert not re.search(r"VODRAY_JWT_SECRET=[\w-]", CLUSTER_YAML.read_text())
    assert "secrets.token_urlsafe(48)" in CLUSTER_YAML.read_text()
