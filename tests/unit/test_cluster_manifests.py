"""The two ways to a cluster: the autoscaler config and the KubeRay RayService manifest.

Both are checked with Ray's own validators (the autoscaler's JSON schema, Serve's config
schema), and for what an operator relies on: the app and its import path, resources, scaling
from zero, and no secret written in either file.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.errors import BadRequest
from serve.deployment import APP_NAME

ROOT = Path(__file__).resolve().parents[2]
RAYSERVICE = ROOT / "cluster" / "kuberay-rayservice.yaml"
AUTOSCALER = ROOT / "ray-cluster.yaml"


@pytest.fixture(scope="module")
def rayservice() -> dict[str, Any]:
    return dict(yaml.safe_load(RAYSERVICE.read_text()))


def serve_config(rayservice: dict[str, Any]) -> dict[str, Any]:
    return dict(yaml.safe_load(rayservice["spec"]["serveConfigV2"]))


def containers(rayservice: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])]
    groups += [(group["groupName"], group) for group in cluster["workerGroupSpecs"]]
    return {name: group["template"]["spec"]["containers"][0] for name, group in groups}


def test_rayservice_runs_the_vodray_app_from_an_importable_builder(rayservice: dict[str, Any]) -> None:
    from ray.serve.schema import ServeDeploySchema

    assert (rayservice["apiVersion"], rayservice["kind"]) == ("ray.io/v1", "RayService")
    config = serve_config(rayservice)
    ServeDeploySchema.model_validate(config)  # what KubeRay hands to Serve must be valid
    [app] = config["applications"]
    assert app["name"] == APP_NAME
    assert app["route_prefix"] == "/"
    assert app["import_path"] == "cluster.kuberay:build"
    module, _, attribute = app["import_path"].partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8000}


def test_rayservice_resources_image_and_scaling(rayservice: dict[str, Any]) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == "2.60.0"
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["authOptions"] == {"mode": "token"}  # Ray 2.60's token auth, on every pod
    [encoder] = cluster["workerGroupSpecs"]
    assert (encoder["groupName"], encoder["minReplicas"], encoder["maxReplicas"]) == ("encoder", 0, 8)
    by_group = containers(rayservice)
    assert {c["image"] for c in by_group.values()} == {"registry.example.com/vodray:0.1.0"}
    assert by_group["head"]["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert by_group["encoder"]["resources"]["limits"] == {"cpu": "16", "memory": "32Gi"}
    for container in by_group.values():
        assert container["resources"]["requests"] == container["resources"]["limits"]
    head_ports = {port["name"]: port["containerPort"] for port in by_group["head"]["ports"]}
    assert head_ports == {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": 8000}


def test_rayservice_reads_settings_and_secrets_from_kubernetes(rayservice: dict[str, Any]) -> None:
    for container in containers(rayservice).values():
        env = {item["name"]: item for item in container["env"]}
        assert env["VODRAY_JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {
            "name": "vodray-secrets",
            "key": "jwt-secret",
        }
        assert "value" not in env["VODRAY_JWT_SECRET"]
        assert container["envFrom"] == [{"configMapRef": {"name": "vodray-settings"}}]


def test_builder_refuses_to_start_without_a_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.kuberay import build

    monkeypatch.delenv("VODRAY_JWT_SECRET", raising=False)
    with pytest.raises(BadRequest, match="VODRAY_JWT_SECRET is not set"):
        build({})


def test_autoscaler_config_is_valid_and_scales_encoders_from_zero() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(AUTOSCALER.read_text())
    validate_config(prepare_config(config))  # Ray's own schema, as `ray up` checks it
    assert config["head_node_type"] == "head"
    encoder = config["available_node_types"]["encoder"]
    assert (encoder["min_workers"], encoder["max_workers"]) == (0, 8)
    setup = "\n".join(config["setup_commands"])
    assert "apt-get install" in setup and "ffmpeg" in setup
    assert "make install" in setup


def test_autoscaler_config_holds_no_secret_and_brings_them_from_the_operator() -> None:
    text = AUTOSCALER.read_text()
    config = yaml.safe_load(text)
    assert "VODRAY_JWT_SECRET=" not in "\n".join(config["setup_commands"])
    assert "change-me" not in text
    mounts = config["file_mounts"]
    assert mounts["/home/admin/.vodray.env"] == "~/.config/vodray/cluster.env"
    assert mounts["/home/admin/.ray/auth_token"] == "~/.ray/auth_token"
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        if "ray start" in command:
            # Every node joins with token auth and the operator's settings in its environment.
            assert "RAY_AUTH_MODE=token" in command and ". ~/.vodray.env" in command
