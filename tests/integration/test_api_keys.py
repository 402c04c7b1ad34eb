"""`incidentflow keys create | list | revoke` against a real database, and the API's view."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from incidentflow.cli import main
from storage.engine import create_async_db_engine, create_sync_db_engine
from storage.keys import KeyScope, find_key, hash_key
from storage.schema import api_keys


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    status = main(list(argv))
    return status, capsys.readouterr().out.strip().splitlines()


def scope_of(database_url: str, key: str) -> KeyScope | None:
    async def lookup() -> KeyScope | None:
        engine = create_async_db_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await find_key(conn, key)
        finally:
            await engine.dispose()

    return asyncio.run(lookup())


def stored_hashes(database_url: str) -> set[str]:
    engine = create_sync_db_engine(database_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(api_keys.c.key_hash)).scalars())
    finally:
        engine.dispose()


def test_create_list_revoke(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    status, out = run(capsys, "keys", "create", "--tenant", "acme", "--name", "ci")
    assert status == 0
    key = out[-1]
    assert key.startswith("ifk_") and " " not in key
    status, ops_out = run(capsys, "keys", "create", "--ops")
    assert status == 0
    assert stored_hashes(database_url) == {hash_key(key), hash_key(ops_out[-1])}
    scope = scope_of(database_url, key)
    assert scope is not None and scope.tenant_id == "acme" and not scope.is_ops
    ops = scope_of(database_url, ops_out[-1])
    assert ops is not None and ops.is_ops

    key_id = key.split("_")[1]
    status, listing = run(capsys, "keys", "list")
    assert status == 0 and any(key_id in line and "tenant:acme" in line for line in listing)
    assert not any(key in line for line in listing)
    assert run(capsys, "keys", "revoke", key_id)[0] == 0
    assert scope_of(database_url, key) is None
    revoked_line = next(line for line in run(capsys, "keys", "list")[1] if key_id in line)
    assert not revoked_line.endswith("-")  # the revocation time
    assert main(["keys", "revoke", "nosuchkey"]) == 2
    assert main(["keys", "create", "--tenant", "no spaces"]) == 2
