"""The `incidentflow` command line: the composition root of every process.

`main` reads the settings once and hands them to the subcommand. A user error (a missing setting
or file, a bad argument) prints one line to standard error and exits 2, a failure at run time
(e.g. an unreachable broker) one line and exits 1; neither prints a traceback. The `publish` and
`command` subcommands live in `incidentflow/publishing_commands.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.settings import Settings
from incidentflow.environment import read_settings
from incidentflow.publishing_commands import add_command, add_publish
from incidentflow.usage import UsageError, positive, quiet_kafka_logs, require

Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets `handler`."""
    parser = argparse.ArgumentParser(
        prog="incidentflow", description="Kafka -> PostgreSQL incident pipeline for LLM products."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="run everything on one machine")
    dev.add_argument("--demo", action="store_true", help="also publish synthetic traffic")
    dev.set_defaults(handler=_dev)

    commands.add_parser("migrate", help="apply migrations to DATABASE_URL").set_defaults(
        handler=_migrate
    )

    ingest = commands.add_parser("ingest", help="the ingest and aggregation worker")
    ingest.add_argument(
        "--stop-when-caught-up",
        action="store_true",
        help="exit 0 once every assigned partition is read to its end and committed",
    )
    ingest.set_defaults(handler=_ingest)

    commands.add_parser("processors", help="the stream processors").set_defaults(
        handler=_processors
    )
    api = commands.add_parser("api", help="the read API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--workers",
        type=positive(int),
        default=1,
        help="server processes sharing the port (1); about one per core the API may use",
    )
    api.set_defaults(handler=_api)

    add_publish(commands)
    add_command(commands)
    _add_keys(commands)
    _add_verify(commands)

    schemas = commands.add_parser("schemas", help="write the JSON Schemas of the contracts")
    schemas.add_argument("--out", type=Path, default=Path("schemas"), help="default: schemas/")
    schemas.set_defaults(handler=_schemas)
    return parser


def _add_keys(commands: Any) -> None:
    keys = commands.add_parser("keys", help="API keys")
    actions = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key (printed once)")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--tenant")
    scope.add_argument("--ops", action="store_true")
    create.add_argument("--name", default="", help="a label shown by `keys list`")
    actions.add_parser("list", help="list keys")
    revoke = actions.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    keys.set_defaults(handler=_keys)


def _add_verify(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="recompute a bundle file's integrity hash: is it as exported?"
    )
    verify.add_argument("bundle", type=Path, metavar="BUNDLE.json")
    verify.set_defaults(handler=_verify)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit status (argparse errors return 2, `--help` 0)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        settings = read_settings()
        handler: Handler = args.handler
        return handler(args, settings)
    except UsageError as error:
        return _fail(args.command, str(error), 2)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        return _fail(args.command, f"invalid value for {field}: {first['msg']}", 2)
    except KeyboardInterrupt:
        return 130
    except (OSError, ConnectionError, TimeoutError) as error:
        return _fail(args.command, f"{type(error).__name__}: {error}", 1)
    except Exception as error:
        from workers.faults import WorkerStop
        from workers.topics import TopicLayoutError

        # e.g. input topics with unequal partitions; an outage past its limit
        if isinstance(error, TopicLayoutError | WorkerStop):
            return _fail(args.command, str(error), 1)
        if type(error).__module__.startswith("aiokafka"):  # e.g. the broker is unreachable
            return _fail(args.command, f"Kafka error: {error}", 1)
        if type(error).__name__ == "OperationalError":  # sqlalchemy/psycopg: no database there
            detail = str(getattr(error, "orig", None) or error).splitlines()[0]
            return _fail(args.command, f"database error: {detail}", 1)
        raise


def _fail(command: str, message: str, status: int) -> int:
    print(f"incidentflow {command}: {message}", file=sys.stderr)
    return status


def _run(result: Any) -> int:
    """Run `result` to completion if it is awaitable; the exit status (None counts as 0)."""
    if inspect.isawaitable(result):

        async def wait() -> Any:
            return await result

        result = asyncio.run(wait())
    return 0 if result is None else int(result)


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from incidentflow.dev import run_dev

    return _run(run_dev(settings, demo=args.demo))


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import upgrade

    upgrade(require(settings.database_url, "DATABASE_URL"))
    print("migrations applied")
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    require(settings.database_url, "DATABASE_URL")
    require(settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS")
    from incidentflow.ingest_process import run_ingest

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_kafka_logs()
    _quiet_database_logs()
    _collect_garbage_rarely()
    return _run(run_ingest(settings, stop_when_caught_up=args.stop_when_caught_up))


def _collect_garbage_rarely() -> None:
    """Tune the cyclic GC of a process that streams through many short-lived objects.

    With the default thresholds the ingest worker spent 5.0 s of its 27.7 s CPU on 300,000
    events in collections (29 full ones of about 120 ms each walked every buffered message);
    with these 0.2 s. Our objects rarely form cycles, so rarer collections only delay freeing
    the few that do. What exists at startup is frozen out of every collection.
    """
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _processors(args: argparse.Namespace, settings: Settings) -> int:
    """The faust worker; its app id (= consumer group) is INCIDENTFLOW_PROCESSORS_GROUP."""
    require(settings.database_url, "DATABASE_URL")
    require(settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS")
    from incidentflow.processors_process import run_processors

    return run_processors(settings)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    require(settings.database_url, "DATABASE_URL")
    import uvicorn

    # Per-request access lines cost more than a fast request itself: on only at debug level;
    # /metrics counts requests by route and status. Each worker process builds its own app
    # (and engine) from the environment.
    uvicorn.run(
        "incidentflow.api_process:api_from_environment",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
    )
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    database_url = require(settings.database_url, "DATABASE_URL")
    if args.keys_action == "create" and args.tenant is not None:
        from domain.contracts import TENANT_PATTERN

        if not re.fullmatch(TENANT_PATTERN, args.tenant) or len(args.tenant) > 100:
            raise UsageError(f"invalid tenant id: {args.tenant!r}")
    return asyncio.run(_keys_async(args, database_url))


async def _keys_async(args: argparse.Namespace, database_url: str) -> int:
    from storage.engine import create_async_db_engine
    from storage.keys import create_key, list_keys, revoke_key

    engine = create_async_db_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            if args.keys_action == "create":
                key_id, key = await create_key(conn, tenant_id=args.tenant, name=args.name)
                scope = "ops" if args.tenant is None else f"tenant {args.tenant}"
                print(f"created key {key_id} ({scope}); it is shown only once:")
                print(key)
                return 0
            if args.keys_action == "revoke":
                if not await revoke_key(conn, args.key_id):
                    raise UsageError(f"no such key: {args.key_id}")
                print(f"revoked {args.key_id}")
                return 0
            _print_keys(await list_keys(conn))
            return 0
    finally:
        await engine.dispose()


def _print_keys(keys: Sequence[Any]) -> None:
    print(f"{'key_id':<14}{'scope':<28}{'name':<20}{'created':<27}revoked")
    for key in keys:
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-"
        created = key.created_at.isoformat(timespec="seconds")
        print(f"{key.key_id:<14}{key.scope:<28}{key.name or '-':<20}{created:<27}{revoked}")


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    """One line on standard output: `intact: <hash>` (exit 0), `altered: ...` (1), or why the
    file cannot be checked (2)."""
    from domain.verification import Outcome, verify

    try:
        data = args.bundle.read_bytes()
    except OSError as error:
        print(f"unreadable: cannot read {args.bundle}: {error.strerror or error}")
        return 2
    result = verify(data)
    if result.outcome is Outcome.INTACT:
        print(f"intact: {result.computed_hash}")
        return 0
    if result.outcome is Outcome.ALTERED:
        if result.computed_hash is None:  # it holds what no export writes: no hash to compare
            print(f"altered: {result.detail}")
        else:
            print(f"altered: expected {result.stated_hash} got {result.computed_hash}")
        return 1
    label = "unreadable" if result.outcome is Outcome.UNREADABLE else "not a bundle"
    print(f"{label}: {result.detail}")
    return 2


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from incidentflow.schemas import write_schemas

    for path in write_schemas(args.out):
        print(path)
    return 0


def _quiet_database_logs() -> None:
    """The ingest worker reports database outages itself: SQLAlchemy's pool logs a traceback for
    each connection it cannot reset while PostgreSQL is away."""
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
