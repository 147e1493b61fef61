"""Shared fixtures: an app built from a tmp_path folder, and the example domains;
the e2e marker on every test under tests/e2e/."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from autoconf.app import Application, create_app
from autoconf.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "data" / "examples"  # a copy of domains/, which an admin may change
DATA = Path(__file__).resolve().parent / "data"
E2E = Path(__file__).resolve().parent / "e2e"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ (any file, present or future) is marked e2e."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m "not e2e"`` (`make fast`) tests/e2e/ is not even imported: its
    collection alone costs about 2 s."""
    if collection_path == E2E and " ".join(config.option.markexpr.split()) == "not e2e":
        return True
    return None


@pytest.fixture
def domains_dir(tmp_path: Path) -> Path:
    """A copy of the example domain folder that a test may change."""
    target = tmp_path / "domains"
    shutil.copytree(EXAMPLES, target)
    return target


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Application]]:
    """Build an app from a folder of {file name: YAML text}, with settings overrides."""
    made: list[Application] = []

    def make(files: dict[str, str] | None = None, **settings: object) -> Application:
        folder = tmp_path / "served"
        folder.mkdir(exist_ok=True)
        for name, text in (files or {}).items():
            (folder / name).write_text(text, encoding="utf-8")
        app = create_app(Settings(domains=folder, **settings))  # type: ignore[arg-type]
        made.append(app)
        return app

    yield make
    for app in made:  # each watching thread ends, and gives back its inotify descriptor
        app.close()


@pytest.fixture
def app() -> Iterator[Application]:
    """The app serving the example domains, as `make run` does."""
    app = create_app(Settings(domains=EXAMPLES))
    yield app
    app.close()


@pytest.fixture
def client(app: Application) -> Client:
    return app.test_client()
