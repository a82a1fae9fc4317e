"""The layout's rules, checked on the code itself (issue 12): the API process loads no database
engine, and ``pipelines.video`` never imports ``pipelines.subtitles``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_app_imports_no_duckdb_pyarrow_or_tantivy() -> None:
    heavy = ("duckdb", "pyarrow", "tantivy", "ctranslate2")
    code = f"import sys, serve.app; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_video_never_imports_subtitles_and_subtitles_may_import_video() -> None:
    video = sorted((ROOT / "pipelines" / "video").glob("*.py"))
    assert video
    for path in video:
        wrong = {m for m in imported_modules(path) if m.startswith("pipelines.subtitles")}
        assert not wrong, f"{path.name} imports {wrong}"
    subtitles = set().union(*(imported_modules(p) for p in (ROOT / "pipelines" / "subtitles").glob("*.py")))
    assert any(m.startswith("pipelines.video") for m in subtitles)
