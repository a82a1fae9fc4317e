"""Local scratch directories, named after the process that made them, and the sweep of the
ones whose process is gone.

A task works in a temp dir of its own and removes it in ``finally``. A worker killed by SIGKILL
(the OOM killer, a drained node, an operator, a crash test) never gets there: a chunk's encode or
a whole title's packaging stays in the temp dir, and a machine that runs for months fills up. So
every such dir is ``{temp}/vodray-{kind}-p{pid}-{random}`` (``scratch_dir``), and ``sweep``
removes one only when

- its process is gone, or the pid now belongs to a process started after the dir last changed
  (the pid was reused), and
- nothing has changed in it for ``grace_s`` (an orphaned ffmpeg of the killed worker may still
  be writing there);

a dir whose process runs is never touched. Dirs of these kinds without a pid (made before names
carried one) go once unchanged for ``unowned_after_s``. Nothing else is looked at: not another
user's dirs, not ``vodray-{uid}`` (HAProxy's private files), not other programs' files.

``vodray up`` sweeps its node when it starts (``cluster.deploy``); the dispatcher sweeps every
node when it starts and every ``VODRAY_SCRATCH_SWEEP_S`` (``pipelines.dispatcher``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from cluster.processes import started_at

log = logging.getLogger(__name__)

KINDS = ("src", "enc", "aud", "pst", "sub", "pkg", "get", "subs", "track", "subpub", "model", "demo", "sb")
"""Every ``scratch_dir`` kind vodray makes (what its tasks, the CLI and the demo work in)."""
GRACE_S = 300.0
UNOWNED_AFTER_S = 24 * 3600.0
_NAME = re.compile(rf"vodray-(?:{'|'.join(KINDS)})-(?:p(\d+)-)?")


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A temp dir for ``kind`` (one of ``KINDS``), named after this process, removed on exit."""
    if kind not in KINDS:
        raise ValueError(f"unknown scratch kind {kind!r}")
    return tempfile.TemporaryDirectory(prefix=f"vodray-{kind}-p{os.getpid()}-")


def sweep(
    root: Path | None = None,
    *,
    grace_s: float = GRACE_S,
    unowned_after_s: float = UNOWNED_AFTER_S,
) -> list[Path]:
    """Remove the scratch dirs under ``root`` (default: this process's temp dir) whose process is
    gone; returns what was removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    now = time.time()
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    for entry in entries:
        found = _NAME.match(entry.name)
        if found is None:
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        unchanged_s = now - info.st_mtime
        if found.group(1) is None:
            if unchanged_s < unowned_after_s:
                continue
        elif unchanged_s < grace_s or _owner_runs(int(found.group(1)), info.st_mtime):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    if removed:
        log.info("removed %d scratch dirs of processes that are gone: %s", len(removed), removed[:5])
    return removed


def _owner_runs(pid: int, changed_at: float) -> bool:
    """Whether ``pid`` runs and may be the process that last changed a dir at ``changed_at``."""
    started = started_at(pid)
    if started is None:
        return False
    # A process started after the dir last changed did not make it: the pid was reused. The
    # start time is known to a clock tick, the mtime to the file system's grain: a second of slack.
    return started <= changed_at + 1.0
