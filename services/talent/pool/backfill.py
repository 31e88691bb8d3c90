"""The pool's initial fill: once, at the talent service's first start, from the
appointments the register already holds (docs/events.md, "The pool's initial fill").

The talent service never reads the registry's database. When its container starts, a
managed green thread asks the registry over nameko RPC, `registry.current_appointments
(after_id, limit)`, page by page, and applies every appointment as if its
`register.appointment.accepted` event had arrived (same schema, same use case). Each
page and the position reached commit together (`pool_backfill`), so a restart resumes
where it stopped, and the fill is marked complete once the registry answers an empty
page: it never runs again.

It never blocks the start: while the registry is not up (no `rpc-registry` queue, or no
answer within RPC_TIMEOUT_S), it retries with exponential back-off (tenacity) until the
container stops. Events arriving meanwhile are applied as usual; both paths are
idempotent and a member's status never moves back (members.py).
"""
from __future__ import annotations

import logging
import threading

import tenacity
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcProxy

from shared import clock
from shared.contracts import events
from shared.db import Database, insert_or_lock
from services.talent.pool import members
from services.talent.pool.models import PoolBackfill

log = logging.getLogger(__name__)

NAME = "appointments"
PAGE = 500
RPC_TIMEOUT_S = 30.0
_accepted = events.TYPES[members.ACCEPTED][1]()


def _state(session) -> PoolBackfill:
    return insert_or_lock(session, PoolBackfill, "name", dict(
        name=NAME, after_id=0, received=0, started_at=clock.now_utc()))[0]


def completed(db: Database) -> bool:
    with db.unit_of_work() as uow:
        row = uow.session.get(PoolBackfill, NAME)
        return row is not None and row.completed_at is not None


def run(db: Database, fetch, page_size: int = PAGE) -> int:
    """Fill the pool from `fetch(after_id, limit) -> {"items", "next_after_id"}` until
    an empty or last page; returns the appointments applied (0 when already done)."""
    applied = 0
    while True:
        with db.unit_of_work() as uow:
            state = _state(uow.session)
            if state.completed_at is not None:
                return applied
            after_id = state.after_id
            uow.commit()
        page = fetch(after_id, page_size)
        with db.unit_of_work() as uow:
            state, now = _state(uow.session), clock.now_utc()
            if state.completed_at is not None or state.after_id != after_id:
                continue  # another run got here first: read the state again
            for item in page["items"]:
                members.appointment_accepted(uow.session, _accepted.load(item), now)
            applied += len(page["items"])
            state.received += len(page["items"])
            if page["items"]:
                state.after_id = int(page["items"][-1]["appointment_id"])
            if not page["items"] or page.get("next_after_id") is None:
                state.completed_at = now
            uow.commit()
            if state.completed_at is not None:
                log.info("pool initial fill complete: %d appointments", state.received)
                return applied


class AppointmentsBackfill(DependencyProvider):
    """Runs `run` against the registry in a managed green thread when the container
    starts (POOL_BACKFILL: false turns it off)."""

    def __init__(self, database_attr: str = "db", *, max_wait: float = 300.0):
        self.database_attr = database_attr
        self.max_wait = max_wait
        self._gt = None
        self._stop = threading.Event()

    def start(self):
        # start(), not setup(): the DatabaseProvider's setup runs concurrently with ours
        enabled = self.container.config.get("POOL_BACKFILL", True)
        if str(enabled).strip().lower() in ("0", "false", "no", "off"):
            return
        self._stop.clear()
        self._gt = self.container.spawn_managed_thread(self._run, identifier="pool_backfill")

    def _database(self) -> Database:
        (dependency,) = [d for d in self.container.dependencies if d.attr_name == self.database_attr]
        return dependency.database

    def _attempt(self, db: Database) -> int:
        config = self.container.config
        timeout = float(config.get("RPC_TIMEOUT_S") or RPC_TIMEOUT_S)
        with ClusterRpcProxy(config, timeout=timeout) as cluster:
            return run(db, lambda after_id, limit: cluster.registry.current_appointments(
                after_id=after_id, limit=limit))

    def _run(self):
        db = self._database()
        if completed(db):
            return
        retrying = tenacity.Retrying(
            wait=tenacity.wait_exponential_jitter(initial=1.0, max=self.max_wait),
            stop=tenacity.stop_when_event_set(self._stop), sleep=self._stop.wait,
            before_sleep=lambda state: log.warning(
                "pool initial fill: registry not answering (%s: %s); retrying in %.0fs",
                type(state.outcome.exception()).__name__, state.outcome.exception(),
                state.upcoming_sleep), reraise=False)
        try:
            for attempt in retrying:
                with attempt:
                    self._attempt(db)
        except tenacity.RetryError:
            pass  # stopping

    def stop(self):
        self._stop.set()
        if self._gt is not None and not self._gt.dead:
            self._gt.kill()

    kill = stop
