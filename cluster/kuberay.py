"""vodray as KubeRay's ``RayService`` runs it: ``import_path: cluster.kuberay:build``.

On Kubernetes nobody runs ``vodray up``: KubeRay starts Serve and imports the application from
here, on the cluster. ``build`` does what ``cluster.deploy.deploy`` does after connecting:
settings read once from the pods' environment (``VODRAY_*``; the JWT secret from a Kubernetes
Secret) and handed to every replica, then the catalog, dispatcher and notifier actors, then the API.
``args`` of the Serve config override the environment (``{"VODRAY_LADDER": "360:800"}``).

It lives beside ``deploy`` (the floor that may import everything), not in ``serve``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import ray

from cluster.errors import BadRequest
from cluster.settings import Settings, load_settings

HEAD_NODE = {"node:__internal_head__": 0.001}
"""A sliver of the resource only the head node has: what pins a task there."""


def build(args: Mapping[str, Any] | None = None) -> Any:
    """The Serve application; starts (or finds) the backend actors on the head node first."""
    from serve.deployment import VodrayApi

    env = {**os.environ, **{str(name): str(value) for name, value in (args or {}).items()}}
    if not env.get("VODRAY_JWT_SECRET"):
        # A secret generated on a pod's disk would change when the pod is replaced,
        # signing every user out; on a cluster it must come from a Kubernetes Secret.
        raise BadRequest("VODRAY_JWT_SECRET is not set: mount it from a Kubernetes Secret")
    settings = load_settings(env)
    ray.get(start_backend_on_head.remote(settings))
    return VodrayApi.options(num_replicas=settings.http.api_replicas).bind(settings)  # type: ignore[attr-defined]


# The catalog actor stays on the node that starts it, because its DuckDB file is on that
# node's disk: the head pod, which has the volume. The build task itself may run anywhere.
@ray.remote(num_cpus=0, resources=HEAD_NODE)
def start_backend_on_head(settings: Settings) -> None:
    from cluster.deploy import start_backend

    start_backend(settings)
