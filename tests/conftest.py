"""Fixtures shared across the suite: databases (SQLite file and the local PostgreSQL) and the bot's store on them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine

from bot.store.db import create_store_engine, migrate
from bot.store.repository import Repository

# The machine's PostgreSQL (trust auth). CI runs these too; set TEST_POSTGRES_URL to point elsewhere.
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            pass
    except (
        psycopg.OperationalError
    ) as exc:  # a missing server is a failure, not a skip: CI must cover PostgreSQL
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    return POSTGRES_ADMIN_URL


def _fresh_postgres_database(admin_url: str) -> Iterator[str]:
    name = f"pmbot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001 - pytest's tmp_path
    """A new, empty database of each kind the bot supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    else:
        yield from _fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The bot's store on `database_url`, migrated as at start."""
    made = create_store_engine(database_url)
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def repo(engine: Engine) -> Repository:
    return Repository(engine)
