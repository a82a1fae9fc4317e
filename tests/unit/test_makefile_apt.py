"""The Makefile's apt lines resolve: what ``make demo`` and ``make test`` would ask apt for, on
this machine and on a bare Debian, simulated with ``apt-get -s`` (nothing is installed).

A bare machine is simulated twice over: ``make`` runs with a PATH that has none of the tools
(ffmpeg, strace, chromium, node, npm; a ``python3`` without venv), so the lines name every
package; and apt resolves them against an empty dpkg status (``Dir::State::status``), as if
nothing were installed, so a Node.js this machine has from NodeSource does not count."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_ONLY = {"chromium", "strace"}

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get: Debian and Ubuntu only")


def asked_for(target: str, path: str, *, every_step: bool = False) -> tuple[list[list[str]], str]:
    """The package list of every apt line ``make -n target`` would run with ``PATH=path``, and
    the whole dry run (``every_step``: as on a fresh clone, with nothing built yet, ``make -B``)."""
    make = shutil.which("make")
    assert make is not None
    dry = subprocess.run(
        [make, "-n", "-s", *(["-B"] if every_step else []), "-C", str(REPO), target],
        env={"PATH": path, "HOME": "/nonexistent"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [found.split() for found in re.findall(r'pkgs="([^"]*)"', dry.stdout)], dry.stdout


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH with only ``id`` and a ``python3`` that has no venv (what Debian splits out)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    id_tool = shutil.which("id")
    assert id_tool is not None
    (folder / "id").symlink_to(id_tool)
    (folder / "python3").write_text("#!/bin/sh\nexit 1\n")
    (folder / "python3").chmod(0o755)
    return str(folder)


def simulate(packages: list[str], *, bare: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``apt-get -s install`` as the Makefile runs it; ``bare``: an empty dpkg status file."""
    options = ["-o", f"Dir::State::status={bare}"] if bare is not None else []
    return subprocess.run(
        ["apt-get", "-s", *options, "install", "--no-install-recommends", *packages],
        capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )  # fmt: skip


@pytest.fixture
def apt_lists() -> None:
    if subprocess.run(["apt-cache", "show", "ffmpeg"], capture_output=True).returncode != 0:
        pytest.skip("no apt package lists here (run `apt-get update` first)")


def test_demo_asks_only_for_what_running_vodray_needs(bare_path: str) -> None:
    lines, dry_run = asked_for("demo", bare_path, every_step=True)
    asked = {package for line in lines for package in line}
    # Node.js/npm install the pages' pinned player and uploader (npm ci in serve/web), which the
    # app serves; the players of the browser tests and Playwright are for `make test` only.
    assert {"ffmpeg", "python3-venv", "nodejs", "npm"} <= asked, lines
    assert not asked & TEST_ONLY, lines
    assert "npm ci --prefix serve/web" in dry_run
    assert "tests/players" not in dry_run and "playwright" not in dry_run.lower()


def test_node_only_when_missing_and_test_adds_strace_and_chromium(bare_path: str, tmp_path: Path) -> None:
    lines, _ = asked_for("test-deps", bare_path)
    assert {"nodejs", "npm"} <= set(lines[0]) and {"strace", "chromium"} <= set(lines[-1]), lines
    # With a Node.js that ships npm (NodeSource), neither is asked for; with node alone, npm only.
    (Path(bare_path) / "node").symlink_to("/bin/true")
    assert "nodejs" not in asked_for("demo", bare_path)[0][0]
    assert "npm" in asked_for("demo", bare_path)[0][0]
    (Path(bare_path) / "npm").symlink_to("/bin/true")
    assert not {"nodejs", "npm"} & {p for line in asked_for("test-deps", bare_path)[0] for p in line}


@pytest.mark.usefixtures("apt_lists")
def test_the_apt_lines_resolve_on_a_bare_machine(bare_path: str, tmp_path: Path) -> None:
    empty = tmp_path / "status"
    empty.write_text("")
    demo = {p for line in asked_for("demo", bare_path)[0] for p in line}
    everything = demo | {p for line in asked_for("test-deps", bare_path)[0] for p in line}
    for packages in (sorted(demo), sorted(everything)):
        result = simulate(packages, bare=empty)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "held broken packages" not in result.stderr
        installed = set(re.findall(r"^Inst (\S+)", result.stdout, re.M))
        assert set(packages) <= installed, set(packages) - installed


@pytest.mark.usefixtures("apt_lists")
def test_the_apt_lines_resolve_on_this_machine() -> None:
    path = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    asked = [p for target in ("demo", "test-deps") for line in asked_for(target, path)[0] for p in line]
    if not asked:
        return  # everything is here: the lines ask apt for nothing (no `apt-get install` runs)
    result = simulate(asked)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
