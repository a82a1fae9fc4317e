"""The username and password rules (``catalog.credentials``): one copy, so ``vodray users create``
refuses exactly what ``POST /v1/auth/register`` refuses, with the same sentence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from catalog.credentials import normalise_username, password_problem, username_to_look_up
from cluster import cli
from cluster.cli import main
from cluster.errors import BadRequest
from cluster.settings import Settings, load_settings
from cluster.storage import Storage
from serve.app import create_app

BAD_USERNAME = "username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'"
GOOD_PASSWORD = "correct horse battery"
REFUSED = [
    ("ab", GOOD_PASSWORD, BAD_USERNAME),
    ("has space", GOOD_PASSWORD, BAD_USERNAME),
    ("x" * 33, GOOD_PASSWORD, BAD_USERNAME),
    ("émile", GOOD_PASSWORD, BAD_USERNAME),
    ("../etc", GOOD_PASSWORD, BAD_USERNAME),
    ("alice", "short12", "password must be at least 8 characters"),
    ("alice", "p" * 257, "password must be at most 256 characters"),
]


def reached_the_catalog(settings: Settings) -> NoReturn:
    raise AssertionError("vodray users create went on to the catalog with input the API refuses")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "vodray"


@pytest.fixture
def api(data_dir: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The real app, with no catalog and no Ray behind it: a refusal must come before either."""
    settings = load_settings({"VODRAY_DATA_DIR": str(data_dir)})
    app = create_app(settings, catalog=None, dispatcher=None, storage=Storage(settings.storage))
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(("username", "password", "detail"), REFUSED)
def test_the_cli_refuses_what_the_api_refuses_in_the_same_words(
    api: TestClient,  # type: ignore[type-arg]
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    username: str,
    password: str,
    detail: str,
) -> None:
    response = api.post("/v1/auth/register", json={"username": username, "password": password})
    assert response.status_code == 400
    assert response.json() == {"detail": detail}

    # A refusal comes before the CLI connects to Ray: if it got that far, this says so at once.
    monkeypatch.setattr(cli, "_catalog", reached_the_catalog)
    env = {"VODRAY_DATA_DIR": str(data_dir), "VODRAY_PASSWORD": password}
    created = CliRunner().invoke(main, ["users", "create", username], env=env)
    assert created.exit_code == 1
    assert created.output == f"Error: {detail}\n"


@pytest.mark.parametrize(
    ("raw", "username"),
    [("alice", "alice"), ("  Alice.B-2_ \n", "alice.b-2_"), ("a" * 32, "a" * 32), ("\tBOB\r", "bob")],
)
def test_usernames_are_kept_lowercase_without_surrounding_space(raw: str, username: str) -> None:
    assert normalise_username(raw) == username
    assert username_to_look_up(raw) == username  # a login finds the user it registered


def test_a_login_looks_up_any_name_without_refusing_it() -> None:
    # A malformed name is simply not found ("wrong username or password"), never a 400.
    assert username_to_look_up(" Has Space ") == "has space"
    with pytest.raises(BadRequest):
        normalise_username(" Has Space ")


@pytest.mark.parametrize(("length", "ok"), [(7, False), (8, True), (256, True), (257, False)])
def test_password_length_bounds(length: int, ok: bool) -> None:
    assert (password_problem("p" * length) is None) is ok
