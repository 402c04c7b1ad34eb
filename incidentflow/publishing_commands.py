"""The `publish` and `command` subcommands: events from a file or the demo, lifecycle commands
for incidents and triage commands for lessons. Each validates what it will publish before any
connection is made, and creates missing topics first."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from domain.settings import Settings
from incidentflow.usage import UsageError, positive, quiet_kafka_logs, require


def add_publish(commands: Any) -> None:
    publish = commands.add_parser("publish", help="publish events from a JSONL file or the demo")
    source = publish.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, metavar="FILE.jsonl")
    source.add_argument("--demo", action="store_true", help="publish synthetic traffic")
    publish.add_argument("--rate", type=positive(float), default=50.0, help="messages/s (50)")
    publish.add_argument("--tenants", type=positive(int), default=5, help="demo tenants (5)")
    publish.add_argument(
        "--duration", type=positive(float), default=None, help="seconds (default: until Ctrl-C)"
    )
    publish.add_argument("--seed", type=int, default=None, help="demo random seed")
    publish.set_defaults(handler=_publish)


LIFECYCLE_ACTIONS = ("acknowledge", "resolve")
LESSON_ACTIONS = ("defer", "dismiss", "convert", "reactivate")


def add_command(commands: Any) -> None:
    command = commands.add_parser(
        "command", help="publish a lifecycle command (incident) or a triage command (lesson)"
    )
    command.add_argument("action", choices=[*LIFECYCLE_ACTIONS, *LESSON_ACTIONS])
    command.add_argument(
        "target_id",
        metavar="ID",
        help="the incident's id (acknowledge, resolve) or the lesson's (defer ... reactivate)",
    )
    command.add_argument("--tenant", required=True, help="the incident's or lesson's tenant id")
    command.add_argument("--by", default=None, help="who issues it (default: $USER or 'cli')")
    command.add_argument(
        "--method", choices=["manual", "rollback", "manual_closure"], help="resolve only"
    )
    command.add_argument("--until", default=None, help="defer only: RFC 3339 time with offset")
    command.add_argument("--draft", default=None, help="convert only: the policy draft")
    command.add_argument("--note", default=None)
    command.set_defaults(handler=_command)


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    if args.file is not None and not args.file.is_file():
        raise UsageError(f"no such file: {args.file}")
    bootstrap = require(settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS")
    quiet_kafka_logs()
    return asyncio.run(_publish_async(args, settings, bootstrap))


async def _publish_async(args: argparse.Namespace, settings: Settings, bootstrap: str) -> int:
    from incidentflow.demo import run_demo
    from incidentflow.publisher import Publisher

    await _ensure_input_topics(settings, bootstrap)
    progress = _Progress()
    async with Publisher(bootstrap, settings) as publisher:
        if args.demo:
            print(f"publishing demo traffic at {args.rate:g}/s to {bootstrap}", file=sys.stderr)
            task = run_demo(publisher, args.rate, args.tenants, args.duration, seed=args.seed,
                            on_progress=progress)  # fmt: skip
            report = await _until_interrupted(task, progress)
        else:
            with args.file.open("rb") as lines:
                report = await publisher.publish_lines(lines, on_progress=progress)
    print(report.summary())
    for problem in (report.skipped + report.failed)[:20]:
        print(f"  line {problem.line_number}: {problem.reason}", file=sys.stderr)
    return 1 if report.failed else 0


async def _until_interrupted(task: Any, progress: _Progress) -> Any:
    """Await the demo; on Ctrl-C (cancellation) return what it had published so far."""
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if progress.last is None or current is None:
            raise
        current.uncancel()  # the interruption is handled: flush, summarise, exit normally
        return progress.last


class _Progress:
    """Prints a progress line to standard error at most once a second; keeps the last report."""

    def __init__(self) -> None:
        self.last: Any = None
        self._printed = 0.0

    def __call__(self, report: Any) -> None:
        self.last = report
        now = time.monotonic()
        if now - self._printed >= 1.0:
            self._printed = now
            skipped = len(report.skipped) + len(report.failed)
            print(f"... {report.total_published} published, {skipped} skipped", file=sys.stderr)


async def _ensure_input_topics(settings: Settings, bootstrap: str) -> None:
    """Create missing input topics first: a producer alone would let the broker pick the layout."""
    from workers.topics import TopicLayoutError, ensure_topics

    topics = settings.input_topics
    try:
        await ensure_topics(bootstrap, topics, settings.topic_partitions, topics)
    except TopicLayoutError as error:
        raise UsageError(str(error)) from None


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.method is not None and args.action != "resolve":
        raise UsageError("--method is only allowed with 'resolve'")
    if args.action in LESSON_ACTIONS:
        return _lesson_command(args, settings)
    for option, value in (("--until", args.until), ("--draft", args.draft)):
        if value is not None:
            raise UsageError(f"{option} is only allowed with a lesson command")
    try:
        incident_id = str(uuid.UUID(args.target_id))
    except ValueError:
        raise UsageError(f"INCIDENT_ID is not a UUID: {args.target_id!r}") from None
    bootstrap = require(settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS")
    fields = {
        "tenant_id": args.tenant,
        "incident_id": incident_id,
        "action": args.action,
        "issued_by": args.by or _default_issuer(),
        "resolution_method": args.method,
        "note": args.note,
    }
    from incidentflow.publisher import command_payload

    command_payload(**fields)  # validates before any connection is made
    quiet_kafka_logs()
    payload = asyncio.run(_send_command(settings, bootstrap, fields))
    print(f"published {payload['action']} {payload['incident_id']} ({payload['command_id']})")
    return 0


async def _send_command(settings: Settings, bootstrap: str, fields: dict[str, Any]) -> Any:
    from incidentflow.publisher import Publisher

    await _ensure_input_topics(settings, bootstrap)
    async with Publisher(bootstrap, settings) as publisher:
        return await publisher.publish_command(**fields)


def _lesson_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        lesson_id = str(uuid.UUID(args.target_id))
    except ValueError:
        raise UsageError(f"LESSON_ID is not a UUID: {args.target_id!r}") from None
    for option, value, action in (("--until", args.until, "defer"),
                                  ("--draft", args.draft, "convert")):  # fmt: skip
        if value is None and args.action == action:
            raise UsageError(f"{option} is required to {action}")
        if value is not None and args.action != action:
            raise UsageError(f"{option} is only allowed with '{action}'")
    fields = {
        "tenant_id": args.tenant,
        "lesson_id": lesson_id,
        "action": args.action,
        "issued_by": args.by or _default_issuer(),
        "until": args.until,
        "policy_draft": args.draft,
        "note": args.note,
    }
    from incidentflow.publisher import lesson_command_payload

    lesson_command_payload(**fields)  # validates before any connection is made
    bootstrap = require(settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS")
    quiet_kafka_logs()
    payload = asyncio.run(_send_lesson_command(settings, bootstrap, fields))
    print(f"published {payload['action']} {payload['lesson_id']} ({payload['command_id']})")
    return 0


async def _send_lesson_command(
    settings: Settings, bootstrap: str, fields: dict[str, Any]
) -> dict[str, Any]:
    from incidentflow.publisher import Publisher
    from workers.topics import ensure_topics

    topic = settings.lesson_commands_topic
    await ensure_topics(bootstrap, [topic], settings.topic_partitions, [topic])
    async with Publisher(bootstrap, settings) as publisher:
        return await publisher.publish_lesson_command(topic, **fields)


def _default_issuer() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
