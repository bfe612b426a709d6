"""The common ground of the SQL repositories: one unit of work's connection, transaction and raw cursor."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection


class Transaction(Protocol):
    conn: Connection
    is_sqlite: bool

    @property
    def raw(self) -> Any: ...


class Repository:
    """A port's SQL implementation, sharing its unit of work's connection (and so its transaction)."""

    def __init__(self, uow: Any) -> None:
        self.uow = uow
        self.conn: Connection = uow.conn
        self.is_sqlite: bool = uow.is_sqlite

    @property
    def raw(self) -> Any:
        """The sqlite3 cursor of the same connection, for the few statements on the per-update path."""
        return self.uow.raw
