"""The sweep of scratch dirs left by killed workers, on real dirs and real processes (Linux /proc)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from cluster.processes import started_at
from cluster.scratch import scratch_dir, sweep


def make(root: Path, name: str, *, changed_at: float | None = None) -> Path:
    path = root / name
    path.mkdir()
    (path / "seg-00001.m4s").write_bytes(b"x" * 100)
    if changed_at is not None:
        os.utime(path, (changed_at, changed_at))
    return path


def gone_pid() -> int:
    """A pid whose process has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_dir_of_a_process_that_is_gone_is_removed_once_untouched_for_the_grace(tmp_path: Path) -> None:
    pid = gone_pid()
    fresh = make(tmp_path, f"vodray-enc-p{pid}-fresh")
    stale = make(tmp_path, f"vodray-pkg-p{pid}-stale", changed_at=time.time() - 120)

    assert sweep(tmp_path, grace_s=60) == [stale]
    assert fresh.exists() and not stale.exists()


def test_a_dir_of_a_running_process_is_kept_however_old(tmp_path: Path) -> None:
    owner = subprocess.Popen(["sleep", "60"])
    try:
        started = started_at(owner.pid)
        assert started is not None
        time.sleep(1.1)
        kept = make(tmp_path, f"vodray-enc-p{owner.pid}-a", changed_at=started + 1.0)
        assert sweep(tmp_path, grace_s=0) == []
        assert kept.exists()
    finally:
        owner.kill()
        owner.wait()
    assert sweep(tmp_path, grace_s=0) == [kept]


def test_a_reused_pid_does_not_keep_an_older_dir(tmp_path: Path) -> None:
    """The pid runs, but as a process started after the dir last changed: not its maker."""
    me = started_at(os.getpid())
    assert me is not None
    old = make(tmp_path, f"vodray-sub-p{os.getpid()}-b", changed_at=me - 600)
    mine = make(tmp_path, f"vodray-sub-p{os.getpid()}-c")

    assert sweep(tmp_path, grace_s=60) == [old]
    assert mine.exists()


def test_dirs_without_a_pid_go_after_a_day_and_nothing_else_is_touched(tmp_path: Path) -> None:
    day_old = time.time() - 25 * 3600
    legacy_old = make(tmp_path, "vodray-enc-k3j2h1g0", changed_at=day_old)
    legacy_new = make(tmp_path, "vodray-enc-z9y8x7w6")
    others = [
        make(tmp_path, "vodray-0", changed_at=day_old),  # HAProxy's private dir of a vodray up
        make(tmp_path, "vodray-argos-q1", changed_at=day_old),  # not a kind vodray sweeps
        make(tmp_path, f"other-enc-p{gone_pid()}-x", changed_at=day_old),
    ]
    a_file = tmp_path / f"vodray-enc-p{gone_pid()}-file"
    a_file.write_bytes(b"not a dir")
    os.utime(a_file, (day_old, day_old))

    assert sweep(tmp_path, grace_s=0) == [legacy_old]
    assert legacy_new.exists() and a_file.exists() and all(p.exists() for p in others)


def test_scratch_dirs_carry_their_process_and_go_on_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch_dir("enc") as made:
        assert Path(made).parent == tmp_path
        assert Path(made).name.startswith(f"vodray-enc-p{os.getpid()}-")
        assert sweep(tmp_path, grace_s=0) == []
    assert not Path(made).exists()
    with pytest.raises(ValueError, match="unknown scratch kind"):
        scratch_dir("nope")
