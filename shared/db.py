"""Persistence plumbing: engines, sessions and the unit of work.

SQLite (file, WAL) is the embedded default; PostgreSQL is production. Under eventlet
the PostgreSQL driver is psycopg2 made green by eventlet (its wait callback): a blocking driver would
stall every worker of the service while one query runs.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

from sqlalchemy import DateTime, Table, create_engine, event, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from shared.jsontext import json_default

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def make_green() -> None:
    """Make sure psycopg2 yields to eventlet's hub while it waits on the server.

    `eventlet.monkey_patch()` normally installs the wait callback itself; this covers
    a process that patched sockets selectively. The CLI and plain scripts (no
    eventlet patching) keep the ordinary blocking driver.
    """
    from eventlet import patcher

    if not patcher.is_monkey_patched("socket"):
        return
    import psycopg2.extensions

    if psycopg2.extensions.get_wait_callback() is None:
        from eventlet.support import psycopg2_patcher

        psycopg2_patcher.make_psycopg_green()


def normalise_url(url: str) -> str:
    """Accept the usual spellings and pin the drivers this project supports."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 20,
                echo: bool = False, autocommit: bool = False) -> Engine:
    """Engine for a service database; `schema` isolates a PostgreSQL tenant (tests, demos)."""
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30},
                               **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))
        _configure_sqlite(engine)
        return engine
    if backend != "postgresql":
        raise ValueError(f"unsupported database backend: {backend}")
    make_green()
    connect_args = {}
    if schema:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema name: {schema!r}")
        # set by the server at connection start: no connection ever sees another schema
        connect_args["options"] = f"-csearch_path={schema}"
    # no overflow: overflow connections are closed on return whenever the pool is full,
    # which under steady load means a new server process per request; a worker that
    # finds every connection busy waits for one instead.
    # The read engine (autocommit) skips the pre-ping round trip: Database.read() retries
    # a read once instead when its connection turns out to be dead.
    engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=0, pool_timeout=30,
                           pool_pre_ping=not autocommit, connect_args=connect_args,
                           pool_reset_on_return=None if autocommit else "rollback",
                           **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))
    if schema and not autocommit:
        _create_schema(engine, schema)
    return engine


class _UtcSQLiteDateTime(sqlite.DATETIME):
    """`DateTime(timezone=True)` on SQLite: stored as UTC text, read back aware (UTC) as
    PostgreSQL reads back timestamptz, so that a value has one type (and one JSON
    form, "...+00:00") on both databases. Naive values are taken as UTC, as before."""

    def bind_processor(self, dialect):
        process = super().bind_processor(dialect)
        if not self.timezone:
            return process

        def bind(value):
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(timezone.utc).replace(tzinfo=None)
            return process(value)
        return bind

    def result_processor(self, dialect, coltype):
        process = super().result_processor(dialect, coltype)
        if not self.timezone:
            return process

        def result(value):
            value = process(value)
            return value.replace(tzinfo=timezone.utc) if value is not None else None
        return result


# One write lock per SQLite file and process, taken before BEGIN IMMEDIATE. Under
# eventlet it is a green lock: a second writer waits in the hub, so the first one can go
# on and commit. Without it, the second writer waits in SQLite's busy handler, which
# sleeps in C and blocks the whole hub (every greenthread, the first writer too) until
# busy_timeout gives up: a stalled service for 30 s, then "database is locked".
# Across processes (the CLI beside a service) busy_timeout still does the waiting.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()
_HELD = "cqo_sqlite_write_lock"


def _write_lock(database: str | None) -> threading.Lock:
    if database in (None, "", ":memory:"):
        return threading.Lock()  # each connection has its own in-memory database
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(Path(database).resolve()), threading.Lock())


def _release_write_lock(info: dict) -> None:
    lock = info.pop(_HELD, None)
    if lock is not None:
        lock.release()


def _configure_sqlite(engine: Engine) -> None:
    # per engine (the dialect instance), before any statement is compiled
    engine.dialect.colspecs = {**engine.dialect.colspecs, DateTime: _UtcSQLiteDateTime}
    write_lock = _write_lock(engine.url.database)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        # pysqlite's own transaction handling defers BEGIN; take control so that
        # SELECT ... then UPDATE inside one unit of work is really one transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT" or \
                conn.engine.dialect.isolation_level == "AUTOCOMMIT":
            return  # Database.read(): plain reads, no transaction
        # IMMEDIATE takes the write lock up front: two writers never deadlock on upgrade.
        if _HELD not in conn.info:
            if not write_lock.acquire(timeout=30):
                raise TimeoutError("SQLite write lock not acquired in 30 s")
            conn.info[_HELD] = write_lock
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release_write_lock(conn.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(conn):
        # fired just before SQLAlchemy sends COMMIT/ROLLBACK: a green lock's release only
        # schedules the next writer, which runs after this greenthread's COMMIT
        _release_write_lock(conn.info)

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):
        _release_write_lock(record.info)  # a connection returned mid-transaction


def _create_schema(engine: Engine, schema: str) -> None:
    with engine.begin() as conn:
        # serialised: concurrent CREATE SCHEMA IF NOT EXISTS can still collide
        conn.execute(text("SELECT pg_advisory_xact_lock(715001)"))
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def execute_prepared(cursor, info: dict, name: str, sql: str, params: tuple) -> None:
    """Run a PostgreSQL statement prepared once per pooled connection (`info` is the
    pooled connection's info dict, as Database.read_raw passes it).

    For hot lookups: the server plans the statement once instead of on every request.
    `sql` uses $1, $2... placeholders; `name` must be a plain identifier.
    """
    prepared = info.setdefault("cqo_prepared", set())
    if name not in prepared:
        cursor.execute(f"PREPARE {name} AS {sql}")
        prepared.add(name)
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params)


def conflict_insert(bind):
    """The `insert` of `bind`'s dialect (engine, connection or session; PostgreSQL or
    SQLite): the one that has ON CONFLICT."""
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert


def insert_or_lock(session: Session, model, key: str, values: Mapping):
    """(row, created): the row of `model` whose unique column `key` has
    `values[key]`, inserted from `values` if there is none, then locked FOR UPDATE.
    ON CONFLICT DO NOTHING: two transactions creating the same row do not both insert
    it (on PostgreSQL the second waits for the first, then finds its row)."""
    inserted = session.execute(conflict_insert(session)(model).values(**values)
                               .on_conflict_do_nothing(index_elements=[key])).rowcount
    column = getattr(model, key)
    row = session.scalars(select(model).where(column == values[key]).with_for_update()).one()
    return row, inserted == 1


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping], *,
                returning: Sequence[str] = (), skip_conflicts: bool = False) -> list:
    """Insert many rows (all with the same keys) in one round trip; returns the
    `returning` columns of the inserted rows, in no particular order.

    On PostgreSQL the rows travel as one JSON document that the server expands with
    json_populate_recordset: psycopg2 otherwise quotes every value client-side, which
    for a few hundred wide rows cost more than the insert itself. Elsewhere executemany.
    `skip_conflicts`: rows that would violate a unique constraint are left out.
    Every row names every column it sets (the same keys); columns left out get their
    server default only (Python-side `default=`s are not applied on PostgreSQL).
    """
    if not rows:
        return []
    columns = list(rows[0].keys())
    keys = rows[0].keys()
    if any(row.keys() != keys for row in rows):
        raise ValueError(f"insert_rows into {table.name}: every row needs the same keys")
    if conn.dialect.name != "postgresql":
        stmt = (sqlite.insert(table).on_conflict_do_nothing() if skip_conflicts
                else insert(table))
        if returning:
            stmt = stmt.returning(*(table.c[name] for name in returning))
            return list(conn.execute(stmt, list(rows)))
        conn.execute(stmt, list(rows))
        return []
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    sql = (f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} "
           f"FROM json_populate_recordset(NULL::{quote(table.name)}, %(rows)s)")
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(quote(name) for name in returning)
    document = json.dumps(rows, default=json_default, ensure_ascii=False, separators=(",", ":"))
    result = conn.exec_driver_sql(sql, {"rows": document})
    return list(result) if returning else []


def copy_from_stdin(cursor, sql: str, data) -> None:
    """COPY ... FROM STDIN on a psycopg2 cursor (`data`: a file-like object).

    psycopg2 refuses COPY while a wait callback is installed (eventlet's green mode, as
    in a service): the callback is taken away for the COPY only, which then blocks this
    process without yielding, so no other green thread can issue a query meanwhile;
    those waiting inside the callback resume after it."""
    import psycopg2.extensions

    callback = psycopg2.extensions.get_wait_callback()
    if callback is None:
        cursor.copy_expert(sql, data, size=1 << 20)
        return
    psycopg2.extensions.set_wait_callback(None)
    try:
        cursor.copy_expert(sql, data, size=1 << 20)
    finally:
        psycopg2.extensions.set_wait_callback(callback)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class UnitOfWork:
    """One database transaction: rolled back unless `commit()` was called.

    Use cases receive one of these, do their reads and writes (and append outbox
    messages) through `session`, and commit once; an exception anywhere discards
    everything, so there is never a half write.
    """

    def __init__(self, session: Session):
        self.session = session
        self.committed = False

    def commit(self) -> None:
        self.session.commit()
        self.committed = True

    def rollback(self) -> None:
        self.session.rollback()

    def flush(self) -> None:
        self.session.flush()


class Database:
    """Engine + session factory for one service database."""

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 20,
                 echo: bool = False):
        self.url = normalise_url(url)
        self.schema = schema
        self.engine = make_engine(url, schema=schema, pool_size=pool_size, echo=echo)
        # reads that need no transaction get their own autocommit pool: one round trip
        # per query instead of BEGIN + query + ROLLBACK, and no isolation switching
        self.read_engine = make_engine(url, schema=schema, pool_size=pool_size, echo=echo,
                                       autocommit=True)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.engine)

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        session = self.sessionmaker()
        uow = UnitOfWork(session)
        try:
            yield uow
            if not uow.committed:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(connection)` on the autocommit read pool; a read whose connection
        was dead (database restarted) is retried once on a fresh one."""
        for attempt in (1, 2):
            try:
                with self.read_engine.connect() as conn:
                    return fn(conn)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def read_raw(self, fn: Callable[[object, dict], T]) -> T:
        """Like `read`, but `fn(cursor, info)` gets a DB-API cursor of the autocommit pool
        and the pooled connection's info dict: for the hottest lookups, where the SQL
        layer's per-statement work costs as much as the query itself."""
        for attempt in (1, 2):
            conn = self.read_engine.raw_connection()
            cursor = None
            try:
                cursor = conn.cursor()
                return fn(cursor, conn.info)
            except self.read_engine.dialect.loaded_dbapi.Error as exc:
                dead = self.read_engine.dialect.is_disconnect(exc, conn.dbapi_connection, cursor)
                if attempt == 2 or not dead:
                    raise
                conn.invalidate()  # a dead connection (database restarted): retry once
            finally:
                if cursor is not None and not cursor.closed:
                    cursor.close()
                conn.close()
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


def database_from_config(config: dict, *, default_sqlite: str) -> Database:
    """DATABASE_URL (+ DATABASE_SCHEMA) from the service config, else a SQLite file."""
    url = config.get("DATABASE_URL") or f"sqlite:///{default_sqlite}"
    # a worker waiting for a pooled connection costs far more under eventlet than an
    # idle connection does: by default every worker can hold one
    pool_size = config.get("DATABASE_POOL_SIZE") or config.get("max_workers") or 10
    return Database(url, schema=config.get("DATABASE_SCHEMA") or None, pool_size=int(pool_size))

