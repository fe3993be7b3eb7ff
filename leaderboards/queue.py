"""Where backends take their next run from: a plain list, or runs claimed in the store with leases.

A backend asks :meth:`RunQueue.take` for a run whenever it has a free worker, and stops when
:meth:`RunQueue.exhausted` is true and nothing is in flight. :class:`ClaimingQueue` claims each run in
the SQLite store just before it is handed out (a lease that a heartbeat thread renews while this runner
lives), so two runners on one database, or Ray workers fed by them, never execute the same run; a killed
runner stops renewing and its claims expire back into the pool after ``lease_s``.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from gymgen.leaderboards.runner import RunSpec

DEFAULT_LEASE_S = 60.0


class RunQueue:
    """The runs of one session, in order; ``retry`` puts a run back at the front."""

    def __init__(self, runs: Iterable[RunSpec]) -> None:
        self.pending: deque[RunSpec] = deque(runs)

    def take(self) -> RunSpec | None:
        """The next run to execute now, or None (none left, or none available at the moment)."""
        return self.pending.popleft() if self.pending else None

    def exhausted(self) -> bool:
        """True when ``take`` will never return a run again (unless ``retry`` is called)."""
        return not self.pending

    def retry(self, run: RunSpec) -> None:
        self.pending.appendleft(run)

    def done(self, run: RunSpec) -> None:
        """``run``'s final result has been recorded."""

    def close(self) -> None:
        """Stop background work and give back whatever is still held."""


class ClaimingQueue(RunQueue):
    """Hands out only runs this runner has claimed in ``store``; waits for runs other runners hold.

    A run another live runner holds stays pending here: if that runner records it, it is dropped; if the
    runner dies, its lease expires and this queue claims and runs it. ``finished_elsewhere`` counts runs
    another runner recorded during this session.
    """

    def __init__(self, runs: Iterable[RunSpec], store: Any, lease_s: float = DEFAULT_LEASE_S) -> None:
        super().__init__(runs)
        if not lease_s > 0:
            raise ValueError(f"lease_s must be > 0 seconds, got {lease_s!r}")
        self.store, self.lease_s = store, float(lease_s)
        from gymgen.leaderboards.store import claim_owner

        self.owner = claim_owner()
        self.since = time.time()
        self.finished_elsewhere = 0
        self.degraded = False
        self._told_waiting = False
        self._next_poll = 0.0
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="gymgen-lease-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        from gymgen.leaderboards.store import Store

        store = None
        while not self._stop.wait(self.lease_s / 4):
            try:
                store = store or Store(self.store.path)
                store.renew_claims(self.owner, self.lease_s)
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease; the next one retries
                store = None
        if store is not None:
            store.close()

    def take(self) -> RunSpec | None:
        if not self.pending or time.monotonic() < self._next_poll:
            return None
        for _ in range(len(self.pending)):
            run = self.pending.popleft()
            if self.degraded:
                return run
            try:
                state = self.store.claim(run.key, self.owner, self.lease_s, self.since)
            except sqlite3.Error as exc:  # the database broke mid-session: keep computing, results go beside it
                self.degraded = True
                print(f"gymgen leaderboard: cannot claim runs in {self.store.path} ({exc}); running the rest unclaimed "
                      "(their results go to the unsaved-results file if the database refuses them)", file=sys.stderr)
                return run
            if state == "claimed":
                return run
            if state == "finished":
                self.finished_elsewhere += 1
                continue
            self.pending.append(run)  # busy: another runner holds it; look again later
        if self.pending:
            self._next_poll = time.monotonic() + min(1.0, self.lease_s / 4)
            if not self._told_waiting:
                self._told_waiting = True
                print(f"gymgen leaderboard: waiting for {len(self.pending)} run(s) claimed by another runner on "
                      f"{self.store.path}; they are taken over if that runner's lease expires (up to {self.lease_s:g} s)",
                      file=sys.stderr)
        return None

    def retry(self, run: RunSpec) -> None:
        self.pending.appendleft(run)  # still claimed by us
        self._next_poll = 0.0

    def done(self, run: RunSpec) -> None:
        try:
            self.store.release(self.owner, run.key)
        except sqlite3.Error:  # an unreleased claim only expires
            pass

    def close(self) -> None:
        self._stop.set()
        self._beat.join(5)
        try:
            self.store.release(self.owner)
        except Exception:  # noqa: BLE001 - an unreleased claim just expires
            pass
