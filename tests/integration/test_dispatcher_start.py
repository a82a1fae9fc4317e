"""A dispatcher whose job code cannot be imported fails to start with the reason, not later.

Before, the job module was imported by the first job: a node missing a dependency took
uploads, and every job died inside the actor before it could record anything, so the
video stayed ``queued`` and whoever waited on it waited forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.errors import Unavailable
from cluster.runtime import connect
from pipelines.dispatcher import start_dispatcher


@pytest.fixture(scope="module")
def local_ray(settings: Any) -> Iterator[None]:
    """This session's Ray; no catalog or Serve: the dispatcher fails before it needs them."""
    import ray

    started = connect(settings, start=True).started_here
    yield
    if started:
        ray.shutdown()


@pytest.mark.usefixtures("local_ray")
def test_a_dispatcher_missing_a_module_fails_to_start_with_a_sentence(settings: Any, tmp_path: Path) -> None:
    # A worker whose install lacks pysubs2 (the subtitles parser): a package of that name
    # first on its path that fails to import, as a missing one would.
    shadow = tmp_path / "broken-site" / "pysubs2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'pysubs2'\")\n")

    with pytest.raises(Unavailable) as caught:
        start_dispatcher(
            settings,
            name=f"broken-dispatcher-{uuid.uuid4().hex[:8]}",
            runtime_env={"env_vars": {"PYTHONPATH": str(shadow.parent)}},
        )
    assert caught.value.detail == (
        "the dispatcher could not start: ModuleNotFoundError: No module named 'pysubs2'"
    )
