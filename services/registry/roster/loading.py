"""Loading checked roster lines: COPY and one upsert on PostgreSQL (new years as partitions), executemany on SQLite; a writer thread where it pays."""
from __future__ import annotations

import csv
import hashlib
import io
import queue
import threading
import time
from typing import Callable

from shared.db import copy_from_stdin
from services.registry.roster.layout import DATA_FIELDS, LINE_FIELDS


CHUNK_ROWS = 100_000         # rows per COPY round on PostgreSQL
GREEN_CHUNK_ROWS = 20_000    # the same under eventlet, where a COPY blocks the process
SQLITE_CHUNK_ROWS = 5_000


# --- loading ------------------------------------------------------------------------------
_COPY_COLUMNS = ", ".join(LINE_FIELDS)
_PG_STAGE = """
CREATE TEMPORARY TABLE roster_stage (
    uscc varchar(18), name varchar(200), county varchar(6), category varchar(32), year integer,
    contact_person varchar(100), phone varchar(32), email varchar(200)
) ON COMMIT DROP
"""
# At the end, one year at a time (its partition is pruned): imports are serialised and
# the stage holds no duplicates, so an UPDATE of the changed rows and an INSERT of the
# missing ones are the upsert, and their row counts are the report's (a partitioned
# table cannot return xmax, the usual ON CONFLICT trick). One join over the whole file
# rather than one per chunk: each would read the year's whole partition again.
_PG_UPDATE = f"""
UPDATE roster_entries AS r SET {", ".join(f"{c} = s.{c}" for c in DATA_FIELDS)}
FROM roster_stage AS s
WHERE r.year = %(year)s AND s.year = %(year)s AND r.uscc = s.uscc
  AND ({", ".join(f"r.{c}" for c in DATA_FIELDS)}) IS DISTINCT FROM ({", ".join(f"s.{c}" for c in DATA_FIELDS)})
"""
_PG_INSERT = f"""
INSERT INTO roster_entries ({_COPY_COLUMNS})
SELECT {", ".join(f"s.{c}" for c in LINE_FIELDS)} FROM roster_stage AS s
WHERE s.year = %(year)s
  AND NOT EXISTS (SELECT 1 FROM roster_entries AS r WHERE r.year = %(year)s AND r.uscc = s.uscc)
ORDER BY s.uscc
"""


def _year_of(line: bytes) -> int:
    return int(next(csv.reader([line.decode("utf-8")]))[4])


class PgLoader:
    """Rows of a year that has no roster yet are COPied into a new table of their own,
    which gets its primary key and is attached as the year's partition at the end
    (nothing can conflict: imports are serialised and the file's duplicates removed).
    Rows of other years go through the staging table and one upsert."""

    def __init__(self, conn):
        self.dbapi = conn.connection.dbapi_connection
        self.built: dict[int, str | None] = {}  # year -> table being built, or None
        self.staged: set[int] = set()            # years with rows in the staging table
        with self.dbapi.cursor() as cur:
            # one import at a time; readers (coverage) are not blocked
            cur.execute("LOCK TABLE roster_entries IN SHARE ROW EXCLUSIVE MODE")
            cur.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = 'roster_entries'::regclass")
            self.partitioned = cur.fetchone()[0]

    def _new_table(self, cur, year: int) -> str | None:
        """The table a fresh year's rows go to, or None when the year has rows already."""
        if year not in self.built:
            table = f"roster_entries_y{year}"
            cur.execute("SELECT EXISTS (SELECT 1 FROM roster_entries WHERE year = %s) "
                        "OR to_regclass(%s) IS NOT NULL", (year, table))
            if cur.fetchone()[0]:
                self.built[year] = None
            elif self.partitioned:  # the CHECK spares ATTACH its scan of the table
                cur.execute(f"CREATE TABLE {table} (LIKE roster_entries INCLUDING DEFAULTS, "
                            f"CONSTRAINT {table}_year CHECK (year = {int(year)}))")
                self.built[year] = table
            else:  # not partitioned: straight into the table, in key order
                self.built[year] = "roster_entries"
        return self.built[year]

    def load(self, data: bytes, years: set[int]) -> tuple[int, int]:
        """`data`: canonical lines, each ended by a newline (a line never holds one)."""
        if len(years) > 1:
            by_year: dict[int, list[bytes]] = {}
            for line in data.split(b"\n")[:-1]:
                by_year.setdefault(_year_of(line), []).append(line)
            totals = [self.load(b"\n".join(part) + b"\n", {y}) for y, part in by_year.items()]
            return sum(t[0] for t in totals), sum(t[1] for t in totals)
        (year,) = years
        with self.dbapi.cursor() as cur:
            table = self._new_table(cur, year)
            if table == "roster_entries":  # by USCC: the primary key's pages in order
                data = b"\n".join(sorted(data.split(b"\n")[:-1])) + b"\n"
            if table is not None:
                copy_from_stdin(cur, f"COPY {table} ({_COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv)",
                      io.BytesIO(data))
                return data.count(b"\n"), 0
            if not self.staged:
                cur.execute(_PG_STAGE)
            self.staged.add(year)
            copy_from_stdin(cur, f"COPY roster_stage ({_COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv)",
                  io.BytesIO(data))
        return 0, 0  # counted by finish()

    def finish(self) -> tuple[int, int]:
        """Upsert the staged rows; index and attach the new partitions. Returns
        (inserted, updated) of the staged rows."""
        inserted = updated = 0
        with self.dbapi.cursor() as cur:
            if self.staged:
                cur.execute("ANALYZE roster_stage")
            for year in sorted(self.staged):
                cur.execute(_PG_UPDATE, {"year": year})
                updated += cur.rowcount
                cur.execute(_PG_INSERT, {"year": year})
                inserted += cur.rowcount
            for year, table in self.built.items():
                if table in (None, "roster_entries"):
                    continue
                cur.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (year, uscc)")
                cur.execute(f"ALTER TABLE roster_entries ATTACH PARTITION {table} FOR VALUES IN ({int(year)})")
        return inserted, updated


class SqliteLoader:
    """Read the chunk's existing rows, then executemany inserts and updates."""

    _KEYS_PER_QUERY = 500

    def __init__(self, conn):
        self.conn = conn

    def load(self, data: bytes, years: set[int]) -> tuple[int, int]:
        rows = [(r[0], r[1], r[2], r[3], int(r[4]), r[5] or None, r[6] or None, r[7] or None)
                for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))]
        existing: dict[tuple[int, str], tuple] = {}
        by_year: dict[int, list[str]] = {}
        for row in rows:
            by_year.setdefault(row[4], []).append(row[0])
        for year, usccs in by_year.items():
            for start in range(0, len(usccs), self._KEYS_PER_QUERY):
                part = usccs[start:start + self._KEYS_PER_QUERY]
                marks = ", ".join("?" * len(part))
                for found in self.conn.exec_driver_sql(
                        f"SELECT {_COPY_COLUMNS} FROM roster_entries WHERE year = ? AND uscc IN ({marks})",
                        (year, *part)):
                    existing[(found[4], found[0])] = tuple(found)
        inserts, updates = [], []
        for row in rows:
            old = existing.get((row[4], row[0]))
            if old is None:
                inserts.append(row)
            elif old != row:
                updates.append((row[1], row[2], row[3], row[5], row[6], row[7], row[4], row[0]))
        if inserts:
            self.conn.exec_driver_sql(
                f"INSERT INTO roster_entries ({_COPY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", inserts)
        if updates:
            sets = ", ".join(f"{c} = ?" for c in DATA_FIELDS)
            self.conn.exec_driver_sql(
                f"UPDATE roster_entries SET {sets} WHERE year = ? AND uscc = ?", updates)
        return len(inserts), len(updates)

    def finish(self) -> tuple[int, int]:
        return 0, 0


class Hasher:
    """The file's bytes to the writer's digest, kept until the writer exists."""

    def __init__(self):
        self.sink, self.kept = None, []

    def update(self, raw: bytes) -> None:
        if self.sink is None:
            self.kept.append(raw)
        else:
            self.sink(raw)

    def attach(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        for raw in self.kept:
            sink(raw)
        self.kept = []


class Writer:
    """Hands chunks to the loader and the file's bytes to the hash: on a thread of its
    own when that gives parallelism (PostgreSQL in a plain process: the server ingests
    chunk N while Python checks N+1, and hashing releases the GIL); inline otherwise
    (SQLite connections stay on their thread; under eventlet a worker yields between
    chunks instead)."""

    def __init__(self, loader, threaded: bool):
        self.loader = loader
        self.digest = hashlib.sha256()
        self.inserted = self.updated = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue | None = None
        self.thread = None
        if threaded:
            self.queue = queue.Queue(maxsize=3)
            self.thread = threading.Thread(target=self._run, name="roster-writer", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if self.error is not None:
                continue  # drain: the importing thread raises it
            try:
                if isinstance(job, bytes):
                    self.digest.update(job)
                else:
                    self._load(*job)
            except BaseException as exc:  # re-raised in the importing thread
                self.error = exc

    def _load(self, pieces: list[bytes], years: set[int]) -> None:
        inserted, updated = self.loader.load(b"".join(pieces), years)
        self.inserted += inserted
        self.updated += updated

    def hash(self, raw: bytes) -> None:
        if self.queue is None:
            self.digest.update(raw)
        else:
            self.queue.put(raw)

    def load(self, pieces: list[bytes], years: set[int]) -> None:
        """`pieces`: canonical lines, each ended by a newline, in strings of one or more."""
        if self.error is not None:
            raise self.error
        if self.queue is None:
            self._load(pieces, years)
            time.sleep(0)  # under eventlet: let the service's other workers run
        else:
            self.queue.put((pieces, years))

    def close(self) -> None:
        if self.queue is not None:
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """The import failed: stop the thread without loading what is queued."""
        if self.queue is not None:
            self.error = self.error or RuntimeError("import aborted")
            self.queue.put(None)
            self.thread.join()


def threads_are_real() -> bool:
    try:
        from eventlet import patcher
    except ImportError:
        return True
    return not patcher.is_monkey_patched("thread")
