"""The store's connection and transactions, which every part of the ``Store`` class shares."""
import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from edgeledger.gateway.store.schema import DEFAULT_SYNCHRONOUS, connect, store_error


class StoreBase:
    """One SQLite connection (WAL), used by one writer thread at a time under ``lock``.

    ``transaction`` and ``write`` translate SQLite errors (StoreFull, StoreBusy, StoreError)
    and roll back first; the methods documented as "inside the caller's transaction" run
    their statements as they are and leave both to the caller's ``transaction``.
    """

    def __init__(self, path: str, synchronous: str = DEFAULT_SYNCHRONOUS) -> None:
        self.path = path
        self.synchronous = synchronous
        self.db = connect(path, synchronous)
        self.lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction, if any. Never raises: SQLite may already have
        rolled it back itself (after a full disk, say), and the error that made the caller
        roll back is the one to report."""
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextlib.contextmanager
    def transaction(self, doing: str) -> Iterator["StoreBase"]:
        """``with store.transaction("storing 12 messages"):`` BEGIN IMMEDIATE ... COMMIT
        under the store lock. Raises StoreFull, StoreBusy or StoreError (rolled back first);
        any other exception rolls back and passes through."""
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                yield self
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self.rollback()
                raise store_error(e, doing) from e
            except BaseException:
                self.rollback()
                raise

    def write(self, doing: str, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement in its own transaction (autocommit). Raises as ``transaction``."""
        with self.lock:
            try:
                return self.db.execute(sql, tuple(args))
            except sqlite3.Error as e:
                self.rollback()
                raise store_error(e, doing) from e

    def _one(self, sql: str, args: Iterable[Any] = ()) -> Any:
        """The first column of the first row of a query (None without a row)."""
        row = self.db.execute(sql, tuple(args)).fetchone()
        return row[0] if row else None
