"""Reusable test helpers that are not fixtures (polling, database URLs, fresh databases)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

Predicate = Callable[[], Any | Awaitable[Any]]


async def wait_until(
    predicate: Predicate,
    timeout: float = 15.0,  # noqa: ASYNC109 - the deadline is the point of this helper
    interval: float = 0.05,
    message: str = "condition not met",
) -> Any:
    """Poll `predicate` (sync or async) until it returns a truthy value, and return that value.

    Raises AssertionError with `message` (and the last value seen) once `timeout` seconds have
    passed; an async predicate that hangs is cancelled at the deadline. Exceptions raised by the
    predicate propagate at once.
    """
    last = None
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            while True:
                value = predicate()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                last = value
                await asyncio.sleep(interval)
    except TimeoutError:
        if not deadline.expired():
            raise  # the predicate's own TimeoutError
        raise AssertionError(f"{message} (after {timeout}s; last value: {last!r})") from None


def with_database(url: str, database: str) -> str:
    """`url` (a libpq URL) pointing at `database`, keeping user, host and query parameters."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create an empty database `test_<hex>` on the server, yield its URL, drop it afterwards."""
    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class RestartablePostgres:
    """A PostgreSQL server of one test's own (pgserver), which the test may stop and restart."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def url(self, database: str = "postgres") -> str:
        return str(self._server.get_uri(database))

    def pg_ctl(self, *args: str) -> None:
        from pgserver import _commands

        _commands.pg_ctl(
            ["-w", *args], pgdata=self._server.pgdata, user=self._server.system_user, timeout=60
        )

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m fast|immediate`: every connection is cut, then it accepts again."""
        self.pg_ctl("-m", mode, "restart")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def start(self) -> None:
        self.pg_ctl("start")


@contextlib.contextmanager
def restartable_postgres(directory: Any) -> Iterator[RestartablePostgres]:
    """A fresh embedded PostgreSQL in `directory` (deleted afterwards), for fault tests."""
    from incidentflow.infra import _import_pgserver

    pgserver = _import_pgserver()
    with pgserver.get_server(directory / "pgdata", cleanup_mode="delete") as server:
        yield RestartablePostgres(server)
