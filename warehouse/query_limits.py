"""What user SQL may take, and how a query is stopped: time, memory, spill space, SQL size, Ctrl-C.

Limits, read from the environment when a warehouse opens (an invalid value is refused then):

- ``RADGENOME_QUERY_TIMEOUT``: seconds a query may run (default 60; 0: no limit). Past it DuckDB
  interrupts the query and it raises `QueryTimeoutError`; the connection stays usable. ``timeout=``
  on `Warehouse.sql`/`arrow`/`query`, `time_limit` around a block and ``--timeout`` on
  ``radgenome sql``/``query`` set it for those queries.
- ``RADGENOME_QUERY_MEMORY``: DuckDB's ``memory_limit`` for the warehouse's engine, a size (``4GB``,
  ``512MiB``) or a share of the memory DuckDB sees (default ``50%``), bounding its joins, sorts,
  aggregates and results. Beyond it DuckDB spills to a private folder under the system temp folder
  (removed on close), up to ``RADGENOME_QUERY_SPILL`` (default ``10GB``; ``0``: no spilling); past
  both a query raises `QueryMemoryError`. One value built by one function call
  (``repeat('x', 2000000000)``) is outside DuckDB's accounting; DuckDB caps a string at 4 GiB.
- ``RADGENOME_QUERY_MAX_SQL``: characters of SQL text (default 100,000; 0: no limit), checked
  before anything parses it (bind long lists as a parameter instead of writing them out).

Ctrl-C during a query interrupts it (DuckDB's interruption, from a SIGINT handler the engine
puts in place while a query runs in the main thread) and raises `QueryInterrupted`, a
KeyboardInterrupt; the connection stays usable.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import duckdb

from warehouse.core.errors import WarehouseError


class QueryTimeoutError(WarehouseError, TimeoutError):
    """A query that ran past its time limit (and was interrupted)."""

    exit_code = 1


class QueryMemoryError(WarehouseError, MemoryError):
    """A query that needed more than the engine's memory limit and spill space."""

    exit_code = 1


class QueryInterrupted(KeyboardInterrupt):
    """Ctrl-C during a query: the query was interrupted, the connection stays usable."""

    exit_code = 130

    def __str__(self) -> str:
        return "interrupted"


_SIZE = re.compile(r"\d+(\.\d+)?\s?([KMGT]i?B|B)", re.IGNORECASE)
_SHARE = re.compile(r"100%|\d{1,2}(\.\d+)?%")
_TIME_LIMIT: ContextVar[float | None] = ContextVar("radgenome_query_time_limit", default=None)


def seconds_limit(value: Any, what: str) -> float:
    """A time limit in seconds (0: none); anything else is refused naming `what`."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise WarehouseError(f"{what} must be a number of seconds, 0 or more (0: no limit), not {value!r}")
    return seconds


_ENV = {"timeout": "RADGENOME_QUERY_TIMEOUT", "memory": "RADGENOME_QUERY_MEMORY",
        "spill": "RADGENOME_QUERY_SPILL", "max_sql": "RADGENOME_QUERY_MAX_SQL"}


@dataclass(frozen=True)
class Limits:
    """What user SQL may take: seconds (0: no limit), DuckDB's memory_limit (a size or a share of
    memory), spill space on disk ("0": none) and characters of SQL text (0: no limit). `from_env`
    reads them from the RADGENOME_QUERY_* variables; a value out of shape is refused naming its variable."""

    timeout: float = 60.0
    memory: str = "50%"
    spill: str = "10GB"
    max_sql: int = 100_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeout", seconds_limit(self.timeout, _ENV["timeout"]))
        if not (_SIZE.fullmatch(self.memory) or _SHARE.fullmatch(self.memory)):
            raise WarehouseError(f"{_ENV['memory']}={self.memory!r} is not a size",
                                 hint="give one like 4GB or 512MiB, or a share of memory like 50%")
        if self.spill != "0" and not _SIZE.fullmatch(self.spill):
            raise WarehouseError(f"{_ENV['spill']}={self.spill!r} is not a size",
                                 hint="give one like 10GB, or 0 for no spilling to disk")
        if not (isinstance(self.max_sql, int) and self.max_sql >= 0):
            raise WarehouseError(f"{_ENV['max_sql']}={self.max_sql!r} is not a number of characters")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        values: dict[str, Any] = {k: raw for k, var in _ENV.items() if (raw := env.get(var, "").strip())}
        if "max_sql" in values and values["max_sql"].isdigit():
            values["max_sql"] = int(values["max_sql"])
        return cls(**values)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Queries inside the block get `seconds` (0: no limit) unless a call names its own; None: as they were."""
    token = _TIME_LIMIT.set(seconds_limit(seconds, "timeout")) if seconds is not None else None
    try:
        yield
    finally:
        if token is not None:
            _TIME_LIMIT.reset(token)


def current_time_limit() -> float | None:
    """The limit `time_limit` set for this context, or None."""
    return _TIME_LIMIT.get()


class Stop:
    """Interrupts a connection's statement at the time limit (a timer thread) or on Ctrl-C (a SIGINT
    handler, while the block runs in the main thread under Python's default handler), never after
    the block; `reason` says which ("timeout", "ctrl-c") or None."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self.con, self.reason, self._running = con, None, True
        self._guard = threading.RLock()  # re-entrant: the SIGINT handler may run while the main thread holds it
        self._timer = threading.Timer(seconds, self._stop, ("timeout",)) if seconds else None
        self._previous: Any = None

    def _stop(self, reason: str) -> None:
        with self._guard:
            if self._running:
                self.reason = self.reason or reason
                self.con.interrupt()

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self._stop("ctrl-c")  # DuckDB's own signal check misses some (a signal taken while it binds)
        raise KeyboardInterrupt

    def __enter__(self) -> Stop:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._guard:
            self._running = False
        if self._timer is not None:
            self._timer.cancel()
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
