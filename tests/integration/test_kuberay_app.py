"""The Serve application of the KubeRay manifest, built the way Serve builds it, answers over HTTP.

Serve resolves ``import_path`` and calls the builder with ``args`` (what its build task does with
a RayService's ``serveConfigV2``). The app it returns runs here beside the session's API, on its
own route prefix, sharing the catalog actor the builder found on the head node.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml
from ray import serve
from ray._common.utils import import_attr
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

from cluster.settings import Settings
from tests.integration.conftest import integration_env

MANIFEST = Path(__file__).resolve().parents[2] / "cluster" / "kuberay-rayservice.yaml"


def test_rayservice_app_serves_the_api_with_the_shared_catalog(
    settings: Settings, deployment: Any, base_url: str
) -> None:
    rayservice = yaml.safe_load(MANIFEST.read_text())
    [app_config] = yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"]
    # The pods' environment: the same data dir and secret as the session's own API.
    args = integration_env(settings.data_dir) | {"VODRAY_JWT_SECRET": settings.auth.jwt_secret}
    builder = import_attr(app_config["import_path"])
    app = call_user_app_builder_with_args_if_necessary(builder, {**app_config["args"], **args})
    serve.run(app, name="kuberay-check", route_prefix="/kuberay")
    try:
        with httpx.Client(base_url=f"{base_url}/kuberay", timeout=30) as kuberay_api:
            ready = kuberay_api.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "ok"
            username, password = f"k{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
            registered = kuberay_api.post(
                "/v1/auth/register", json={"username": username, "password": password}
            )
            assert registered.status_code == 201, registered.text
            login = kuberay_api.post("/v1/auth/login", json={"username": username, "password": password})
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
        # One catalog and one secret: the session's API knows the user and accepts the token.
        me = httpx.get(f"{base_url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == username
    finally:
        serve.delete("kuberay-check")
