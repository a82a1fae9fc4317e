"""A head and two worker nodes on this machine sharing one storage root, running one job.

``python -m tests.integration.multinode_driver DATA_DIR SOURCE`` prints the finished video
and the node each output was made on, as JSON. A process of its own, because a Ray driver
joins one cluster per process and the other integration tests share a local Ray.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from cluster.deploy import start_backend
from cluster.layout import source_key
from cluster.settings import load_settings
from cluster.storage import Storage
from pipelines.job import Job
from tests.integration.conftest import integration_env


def first_call(call: Callable[[], Any]) -> Any:
    """A new actor on a busy three-node cluster may fail its first call while it starts."""
    for attempt in range(30):
        try:
            return call()
        except ray.exceptions.RayError as exc:
            print(f"catalog not ready ({type(exc).__name__}: {exc}); retrying", file=sys.stderr)
            if attempt == 29:
                raise
            time.sleep(1)
    return None


def main(data_dir: Path, source: Path) -> None:
    settings = load_settings(integration_env(data_dir, VODRAY_CHUNK_S="2"))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace=settings.ray.namespace)
        catalog = start_backend(settings).catalog
        user = first_call(lambda: ray.get(catalog.create_user.remote("nodes", "not-a-login")))
        video_id = "multinode0000000000000000000000a"
        Storage(settings.storage).put_file(source, source_key(video_id))
        ray.get(
            catalog.create_video.remote(video_id, user["id"], "t", "", "private", source_key(video_id), 1)
        )
        # The job runs here, in the driver, so its summary (who made what) comes back to us;
        # its tasks are the same Ray tasks the dispatcher would start.
        summary = asyncio.run(Job(video_id, settings, catalog).run())
        video = ray.get(catalog.get_video.remote(video_id))
        nodes = sorted(node["NodeID"] for node in ray.nodes() if node["Alive"])
        print(json.dumps({"video": video, "summary": summary, "nodes": nodes}, default=str), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
