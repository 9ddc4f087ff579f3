"""Engine and migrations. SQLite file by default; PostgreSQL (several replicas) through DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant will do: it only has to be the same for every replica migrating this database.
_MIGRATION_LOCK_ID = 7_302_451


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// (as Heroku and others hand them out) use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_store_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
            # Python's sqlite3 opens a transaction only at the first write, so a read-then-write (a row
            # "locked" with SELECT ... FOR UPDATE, which SQLite ignores) could interleave with another
            # thread's and lose its update. Take over BEGIN (below) instead.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection) -> None:  # noqa: ANN001 - SQLAlchemy Connection
            # IMMEDIATE takes the write lock at the start, so every transaction is serialisable.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # pool_pre_ping: a PostgreSQL restart leaves dead pooled connections; replace them instead of failing.
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 5}
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision. Replicas starting together take turns (an advisory lock)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(
            f"The database could not be migrated: {exc.__class__.__name__}: {exc.args[0] if exc.args else exc}"
        ) from exc


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction. The driver's errors become StoreError here, the one place for the whole store;
    IntegrityError passes through, since a unique claim that loses is an answer, not a failure."""
    try:
        with sessions.begin() as session:
            yield session
    except IntegrityError:
        raise
    except SQLAlchemyError as exc:
        reason = str(exc.orig) if getattr(exc, "orig", None) is not None else str(exc)
        raise StoreError(
            f"The database is unavailable: {reason.splitlines()[0] if reason else type(exc).__name__}"
        ) from exc
