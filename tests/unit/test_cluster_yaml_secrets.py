"""The JWT secret: ray-cluster.yaml (public) ships none, and `vodray up` refuses a weak one."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "ray-cluster.yaml"


def all_commands(config: dict) -> list[str]:
    return [command for key, value in config.items() if key.endswith("_commands") for command in value]


def test_no_jwt_secret_value_is_shipped() -> None:
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert all_commands(config), "the file has setup commands"
    # The secret comes from the operator's environment file; the file only says how to make one.
    assert not re.search(r"VODRAY_JWT_SECRET=[\w-]", CLUSTER_YAML.read_text())
    assert "secrets.token_urlsafe(48)" in CLUSTER_YAML.read_text()


def test_vodray_up_refuses_the_old_sample_secret_before_starting_anything(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cluster.cli import main

    env = {
        "VODRAY_DATA_DIR": str(tmp_path / "data"),
        "VODRAY_JWT_SECRET": "change-me-to-a-long-random-string-of-48-chars-or-more",
    }
    result = CliRunner().invoke(main, ["up"], env=env)

    assert result.exit_code == 1
    assert result.output == (
        "Error: VODRAY_JWT_SECRET looks like a placeholder (it contains 'change-me'); "
        "make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'\n"
    )
    assert not (tmp_path / "data" / "ray-address.json").exists()  # no Ray was started
