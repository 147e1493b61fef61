"""Shared fixtures: an app built from a tmp_path folder, and the example domains."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug.test import Client

from autoconf.app import Application, create_app
from autoconf.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "domains"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def domains_dir(tmp_path: Path) -> Path:
    """A copy of the example domain folder that a test may change."""
    target = tmp_path / "domains"
    shutil.copytree(EXAMPLES, target)
    return target


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Application]:
    """Build an app from a folder of {file name: YAML text}, with settings overrides."""

    def make(files: dict[str, str] | None = None, **settings: object) -> Application:
        folder = tmp_path / "served"
        folder.mkdir(exist_ok=True)
        for name, text in (files or {}).items():
            (folder / name).write_text(text, encoding="utf-8")
        return create_app(Settings(domains=folder, **settings))  # type: ignore[arg-type]

    return make


@pytest.fixture
def app() -> Application:
    """The app serving the example domains, as `make run` does."""
    return create_app(Settings(domains=EXAMPLES))


@pytest.fixture
def client(app: Application) -> Client:
    return app.test_client()
