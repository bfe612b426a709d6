"""PostgreSQL: the per-update statements in two round trips instead of four.

An update is a transaction of its own: BEGIN, claim the delivery id and lock and read the dialog, save the
dialog, COMMIT. Sent one by one (as psycopg does outside autocommit) that is four round trips, and on a
two-core machine each costs about as much CPU in the client and the server as the statement it carries
(issue 17). So the connection runs in psycopg's autocommit mode and the transaction is opened and closed by
hand, riding on the statements themselves: the per-update statements are prepared once per connection
(`PREPARE`, each on its first use) and sent as `EXECUTE` in a simple query, which may hold several
statements — `BEGIN; EXECUTE otklik_claim_and_load(…)` — with the values quoted by libpq for the connection;
the dialog's save is held back and sent with the COMMIT — `EXECUTE otklik_save(…); COMMIT`. libpq runs them
directly (PQexec): psycopg's cursor, adapting the values and reading the result cost as much CPU as the rest
of the round trip, and these statements take text and give back text.

Everything else (SQLAlchemy's statements) keeps its usual path, prepared by psycopg after a few uses: a hook
before each of them sends the BEGIN the transaction still lacks, and any statement held back, so that
statements reach the server in the order they were made. psycopg drops every prepared statement of the
session with a ROLLBACK it sends (DEALLOCATE ALL), ours with them: such a rollback makes ours be prepared
again.

This needs a session of its own on the server, as psycopg's prepared statements do: a direct connection or a
pooler in session mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine

STATEMENTS: dict[str, tuple[str, int]] = {
    "otklik_claim": (
        "INSERT INTO processed_events (channel, bot, event_key, at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        4,
    ),
    # The claim and the locked read in one statement; the dialog row is made first when the chat is new, so
    # that there is always a row to lock.
    "otklik_claim_and_load": (
        "WITH claim AS (INSERT INTO processed_events (channel, bot, event_key, at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING 1) SELECT EXISTS (SELECT FROM claim), "
        "(SELECT state FROM dialogs WHERE channel = $5 AND chat_id = $6 FOR UPDATE)",
        6,
    ),
    "otklik_load": ("SELECT state FROM dialogs WHERE channel = $1 AND chat_id = $2 FOR UPDATE", 2),
    "otklik_ensure_dialog": (
        "INSERT INTO dialogs (channel, chat_id, user_id, state, updated_at) VALUES ($1, $2, $3, '{}', $4) "
        "ON CONFLICT DO NOTHING",
        4,
    ),
    "otklik_save": (
        "UPDATE dialogs SET state = $1, updated_at = $2, user_id = $3 WHERE channel = $4 AND chat_id = $5",
        5,
    ),
    # Filing a ticket (one update in eight of a report): the ticket, then its photos and first events, which
    # are held back to go with the next statement.
    "otklik_create_ticket": (
        "INSERT INTO tickets (category_code, subcategory_code, lat, lon, address, location_source, "
        "description, author_channel, author_chat_id, author_user_id, language, organisation_code, status, "
        "created_at, updated_at, deadline, overdue_notified) VALUES "
        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, false) RETURNING number",
        16,
    ),
    "otklik_add_ticket_photo": (
        "INSERT INTO ticket_photos (ticket_number, position, sha256, kind, hidden) "
        "VALUES ($1, $2, $3, $4, false)",
        4,
    ),
    "otklik_add_event": (
        "INSERT INTO ticket_events (ticket_number, action, at, actor, from_status, to_status, comment, "
        "photos, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        9,
    ),
}
ClientCursor: Any = None
"""psycopg's client-side-binding cursor class, imported by `install`,"""
pq: Any = None
"""psycopg's libpq wrapper,"""
errors: Any = None
"""and its errors (psycopg is imported only where PostgreSQL is used, not by every admin command on
SQLite)."""
CURSOR = "otklik.cursor"
"""`Connection.info` keys: the client-side-binding cursor kept with the connection (making one: ~6 µs),"""
SESSION = "otklik.session"
"""the driver connection's `_Session`,"""
HELD = "otklik.held"
"""and the statements held back to go with the next one (the dialog's save), as (name, values)."""
IDLE = 0
"""libpq's PQTRANS_IDLE (psycopg.pq.TransactionStatus.IDLE)."""
RESULT_OK = {1, 2}
"""libpq's PGRES_COMMAND_OK and PGRES_TUPLES_OK."""
Row = tuple[str | None, ...]


@dataclass(slots=True)
class _Session:
    """What a driver connection needs for our statements: its encoding and libpq's quoting for it, and the
    names of STATEMENTS prepared on it (None: unknown, after a rollback)."""

    driver: Any
    encoding: str
    escaping: Any
    prepared: set[str] | None = field(default_factory=set)


@cache
def execute_text(name: str) -> str:
    return f"EXECUTE {name}({', '.join(['{}'] * STATEMENTS[name][1])})"


def install(engine: Engine) -> None:
    """Make `engine`'s connections work as described above."""
    global ClientCursor, pq, errors
    from psycopg import ClientCursor, errors, pq

    event.listen(engine, "connect", _autocommit)
    event.listen(engine, "before_cursor_execute", _before_statement)
    event.listen(engine, "rollback", _before_rollback)
    event.listen(engine, "reset", _before_reset)


def run(conn: Connection, name: str, params: tuple[Any, ...]) -> Row | None:
    """Run per-update statement `name` in the transaction, with the BEGIN or the held-back statements it has
    to carry: the first row of its result as the server's text (None for NULL), None when it has no rows."""
    return _send(conn, name, params)


def query(conn: Connection, sql: str, params: tuple[Any, ...]) -> Any:
    """Run `sql` (%s placeholders) with its values quoted into it by psycopg, never prepared, in one simple
    query with the BEGIN or the held-back statements it has to carry; the cursor holds its result. For a
    statement whose best plan depends on its values, which a prepared statement's generic plan, used after
    five executions, does not know (the nearby search: ~1 ms with its values, ~9 ms with the generic plan),
    and for one that would otherwise cost a round trip of its own for what it carries."""
    driver: Any = conn.connection.driver_connection
    cursor = conn.info.get(CURSOR)
    if cursor is None or cursor.closed or cursor.connection is not driver:
        cursor = conn.info[CURSOR] = ClientCursor(driver)
    try:
        _session, parts = _carried(conn, driver)
        carried = "".join(f"{part}; ".replace("%", "%%") for part in parts)  # psycopg's placeholders
        cursor.execute(carried + sql, params, prepare=False)
    except driver.Error as exc:
        # SQLAlchemy's error, as from its own statements (it would close a cursor handed to it: this one is
        # kept with the connection).
        conn._handle_dbapi_exception(exc, sql, params, None, None)  # always raises
        raise  # pragma: no cover
    while cursor.nextset():  # on to the last statement's result
        pass
    return cursor


def hold(conn: Connection, name: str, params: tuple[Any, ...]) -> None:
    """Send `name` with the next statement or the COMMIT, whichever comes first."""
    conn.info.setdefault(HELD, []).append((name, params))


def commit(conn: Connection) -> None:
    """The statements held back and the COMMIT, in one round trip (nothing when none is held: SQLAlchemy's
    commit then sends the COMMIT, if a statement opened a transaction)."""
    if conn.info.get(HELD):
        _send(conn, "COMMIT", ())


def reset(conn: Connection) -> None:
    """A new unit of work: nothing held back from one that failed."""
    conn.info.pop(HELD, None)


def _send(conn: Connection, name: str | None, params: tuple[Any, ...]) -> Row | None:
    """Statement `name` (a STATEMENTS name, "COMMIT", or None for only what it would carry) in one simple
    query, after the BEGIN of a transaction not yet open and the held-back statements. libpq runs it and
    hands back the last statement's result, text that needs no conversion: psycopg's cursor, its values'
    adaptation and its result handling cost as much CPU again as the rest of an update's round trip."""
    driver: Any = conn.connection.driver_connection
    try:
        session, parts = _carried(conn, driver)
        if name == "COMMIT":
            parts.append(name)
        elif name is not None:
            parts.append(_execute(session, name, params))
        result = _exec(session, "; ".join(parts))
    except driver.Error as exc:
        # SQLAlchemy's error, as from its own statements: a lost connection is invalidated and reported as
        # such, a deadlock is an `OperationalError` the retry loop recognises.
        conn._handle_dbapi_exception(exc, name or "", params, None, None)  # always raises
        raise  # pragma: no cover
    if not result.ntuples:
        return None
    encoding = session.encoding
    return tuple(
        None if (value := result.get_value(0, column)) is None else value.decode(encoding)
        for column in range(result.nfields)
    )


def _carried(conn: Connection, driver: Any) -> tuple[_Session, list[str]]:
    """The BEGIN of a transaction not yet open and the statements held back, taken off the connection."""
    session = _session(conn, driver)
    held = conn.info.pop(HELD, ())
    parts = ["BEGIN"] if driver.pgconn.transaction_status == IDLE else []
    parts.extend(_execute(session, name, values) for name, values in held)
    return session, parts


def _session(conn: Connection, driver: Any) -> _Session:
    session: _Session | None = conn.info.get(SESSION)
    if session is None or session.driver is not driver:
        session = conn.info[SESSION] = _Session(driver, driver.info.encoding, pq.Escaping(driver.pgconn))
    return session


def _exec(session: _Session, sql: str) -> Any:
    """`sql` through libpq (PQexec: the simple query protocol, several statements allowed; the GIL is let go
    while it waits), its error as psycopg's."""
    result = session.driver.pgconn.exec_(sql.encode(session.encoding))
    if result.status not in RESULT_OK:
        raise errors.error_from_result(result, encoding=session.encoding)
    return result


def _execute(session: _Session, name: str, values: tuple[Any, ...]) -> str:
    """`EXECUTE name('…', …)`, after preparing `name` on this connection if it is not yet (one round trip,
    once per connection; a single PREPARE is done or not, never half-way)."""
    if session.prepared is None:  # after a rollback: psycopg dropped them all if it had any of its own
        found = _exec(session, "SELECT name FROM pg_prepared_statements WHERE starts_with(name, 'otklik_')")
        session.prepared = {found.get_value(row, 0).decode() for row in range(found.ntuples)}
    if name not in session.prepared:
        _exec(session, f"PREPARE {name} AS {STATEMENTS[name][0]}")
        session.prepared.add(name)
    return execute_text(name).format(*[_literal(session, value) for value in values])


def _literal(session: _Session, value: Any) -> str:
    """`value` as an SQL literal; text is quoted by libpq for this connection (PQescapeLiteral). The
    statement's parameter types, fixed when it was prepared, make the server read an untyped literal as
    that type."""
    if isinstance(value, str):
        if "\x00" in value:  # PQescapeLiteral would cut the text there
            raise errors.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        quoted: bytes = session.escaping.escape_literal(value.encode(session.encoding))
        return quoted.decode(session.encoding)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # quoted: 'nan' and 'inf' are floats' text too
        return f"'{value!r}'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def _autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.autocommit = True


def _before_statement(conn: Connection, *_args: Any) -> None:
    """Before each of SQLAlchemy's statements: the BEGIN of a transaction not yet open (psycopg's own, outside
    autocommit) and the statements held back."""
    if conn.info.get(HELD):
        _send(conn, None, ())
        return
    driver: Any = conn.connection.driver_connection
    if (
        driver.pgconn.transaction_status == IDLE
        and conn.in_transaction()
        and conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
    ):
        driver.execute("BEGIN")


def _before_rollback(conn: Connection) -> None:
    """psycopg sends ROLLBACK only inside a transaction, and then drops every prepared statement if it had
    prepared any of its own: which of ours are left is then asked of the server, on their next use."""
    if conn.invalidated:  # a new connection comes with nothing prepared
        return
    _unsure(conn.connection.driver_connection, conn.info)


def _before_reset(dbapi_connection: Any, record: Any, _state: Any) -> None:
    """The pool's own rollback, when a connection is given back."""
    _unsure(dbapi_connection, record.info)


def _unsure(driver: Any, info: dict[str, Any]) -> None:
    session: _Session | None = info.get(SESSION)
    if session is not None and session.driver is driver and driver.pgconn.transaction_status != IDLE:
        session.prepared = None
