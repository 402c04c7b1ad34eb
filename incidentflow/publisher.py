"""Publishing events, lifecycle commands and lesson commands to their topics (a producer tool).

A JSONL line is routed by its `type` field (`llm_call_failure`, `policy_violation`,
`incident_command`) to the matching topic, keyed by its `tenant_id` (UTF-8), and sent with its bytes
unchanged: consumers ignore unknown fields such as `type`. A line that cannot be routed is skipped
and reported with its number and reason; the publisher never validates the contracts (that is the
consumers' job, and their dead-letter topic is where invalid events end up).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer

from domain.contracts import CommandAction, LifecycleCommand, ResolutionMethod
from domain.lesson_triage import LessonAction, LessonCommand

MESSAGE_TYPES = ("llm_call_failure", "policy_violation", "incident_command")
MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Large enough for a deliberately oversized (> 1 MiB) test message; the broker decides the rest."""
DEFAULT_CHUNK = 2000


class TopicNames(Protocol):
    """The input topic names (`workers.settings.Settings` is one)."""

    failures_topic: str
    violations_topic: str
    commands_topic: str


class UnroutableLine(ValueError):
    """A line that names no topic or key; the message is the reason reported for it."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Kafka record to send: the value bytes exactly as they will be on the topic."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line (1-based number) that was skipped or whose send failed, and why."""

    line_number: int
    reason: str


@dataclass(slots=True)
class PublishReport:
    """What a publish run did: records sent per topic, lines skipped and sends that failed."""

    published: Counter[str] = field(default_factory=Counter)
    skipped: list[LineProblem] = field(default_factory=list)
    failed: list[LineProblem] = field(default_factory=list)

    @property
    def total_published(self) -> int:
        return sum(self.published.values())

    def merge(self, other: PublishReport) -> None:
        self.published.update(other.published)
        self.skipped.extend(other.skipped)
        self.failed.extend(other.failed)

    def summary(self) -> str:
        """One line: totals per topic, then skipped and failed counts."""
        per_topic = ", ".join(f"{topic}={count}" for topic, count in sorted(self.published.items()))
        return (
            f"published {self.total_published} messages ({per_topic or 'none'}); "
            f"skipped {len(self.skipped)} lines; failed {len(self.failed)}"
        )


def topic_for(message_type: str, topics: TopicNames) -> str:
    """The topic of a message `type`; `UnroutableLine` for any other value."""
    match message_type:
        case "llm_call_failure":
            return topics.failures_topic
        case "policy_violation":
            return topics.violations_topic
        case "incident_command":
            return topics.commands_topic
    raise UnroutableLine(
        f"unknown type {message_type!r} (expected one of {', '.join(MESSAGE_TYPES)})"
    )


def route_line(line: str | bytes, topics: TopicNames) -> Outgoing | None:
    """Route one JSONL line; `None` for a blank line, `UnroutableLine` when it cannot be routed.

    The value is the line without its line terminator, byte for byte.
    """
    value = (line.encode() if isinstance(line, str) else line).rstrip(b"\r\n")
    if not value.strip():
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise UnroutableLine(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise UnroutableLine(f"not a JSON object but {type(document).__name__}")
    message_type = document.get("type")
    if not isinstance(message_type, str):
        raise UnroutableLine("no 'type' field")
    topic = topic_for(message_type, topics)
    tenant_id = document.get("tenant_id")
    if not isinstance(tenant_id, str) or not tenant_id:
        raise UnroutableLine("no 'tenant_id' (the message key)")
    return Outgoing(topic, tenant_id.encode(), value)


def command_payload(
    *,
    tenant_id: str,
    incident_id: str,
    action: CommandAction | str,
    issued_by: str = "unknown",
    resolution_method: ResolutionMethod | str | None = None,
    note: str | None = None,
    command_id: str | None = None,
    issued_at: datetime | None = None,
) -> dict[str, Any]:
    """A lifecycle command as wire JSON, validated against `LifecycleCommand`.

    `command_id` defaults to a random UUID and `issued_at` to now; `resolution_method` is only
    allowed with `resolve`. Raises `ValueError` (a pydantic `ValidationError`) for bad values.
    """
    if resolution_method is not None and CommandAction(action) is not CommandAction.RESOLVE:
        raise ValueError("a resolution method is only allowed with 'resolve'")
    payload: dict[str, Any] = {
        "command_id": command_id or str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "incident_id": incident_id,
        "action": str(action),
        "issued_at": (issued_at or datetime.now(UTC)).isoformat(),
        "issued_by": issued_by,
        "resolution_method": str(resolution_method) if resolution_method else None,
        "note": note,
    }
    LifecycleCommand.model_validate(payload)
    return {name: value for name, value in payload.items() if value is not None}


def lesson_command_payload(
    *,
    tenant_id: str,
    lesson_id: str,
    action: LessonAction | str,
    issued_by: str = "unknown",
    until: datetime | str | None = None,
    policy_draft: str | None = None,
    note: str | None = None,
    command_id: str | None = None,
    issued_at: datetime | None = None,
) -> dict[str, Any]:
    """A lesson triage command as wire JSON, validated against `LessonCommand`.

    `command_id` defaults to a random UUID and `issued_at` to now; `until` (RFC 3339 with an
    offset, after `issued_at`) goes with `defer` only, `policy_draft` with `convert` only. Raises
    `ValueError` (a pydantic `ValidationError`) for bad values.
    """
    payload: dict[str, Any] = {
        "command_id": command_id or str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "lesson_id": lesson_id,
        "action": str(action),
        "issued_at": (issued_at or datetime.now(UTC)).isoformat(),
        "issued_by": issued_by,
        "until": until.isoformat() if isinstance(until, datetime) else until,
        "policy_draft": policy_draft,
        "note": note,
    }
    LessonCommand.model_validate(payload)
    return {name: value for name, value in payload.items() if value is not None}


class Publisher:
    """An aiokafka producer for the input topics; use as `async with Publisher(...) as p`.

    `acks="all"` waits for every in-sync replica (tansu, single node, accepts it too).
    Sends are pipelined: up to `chunk_size` records are in flight before their results are
    awaited, so a file of events publishes at producer speed rather than one round trip each.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: TopicNames,
        *,
        acks: int | str = "all",
        linger_ms: int = 5,
        chunk_size: int = DEFAULT_CHUNK,
        max_request_size: int = MAX_REQUEST_BYTES,
        client_id: str = "incidentflow-publisher",
    ) -> None:
        self.topics = topics
        self._chunk_size = chunk_size
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks=acks,
            linger_ms=linger_ms,
            max_request_size=max_request_size,
            max_batch_size=64 * 1024,
        )

    async def __aenter__(self) -> Publisher:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._producer.stop()

    async def publish_lines(
        self,
        lines: Iterable[str | bytes],
        on_progress: Callable[[PublishReport], None] | None = None,
    ) -> PublishReport:
        """Route and send JSONL lines; the report names every skipped or failed line.

        `on_progress` is called with the running report after each chunk.
        """
        report = PublishReport()
        records = self._routable(lines, report)
        await self._send_numbered(records, report, on_progress)
        return report

    async def send_all(
        self,
        records: Iterable[Outgoing],
        on_progress: Callable[[PublishReport], None] | None = None,
    ) -> PublishReport:
        """Send already-routed records (numbered from 1 in the report), pipelined in chunks."""
        report = PublishReport()
        await self._send_numbered(enumerate(records, start=1), report, on_progress)
        return report

    async def publish_raw(self, topic: str, key: bytes | str | None, value: bytes) -> None:
        """Send one record exactly as given (e.g. a deliberately invalid one) and wait for it."""
        encoded_key = key.encode() if isinstance(key, str) else key
        await self._producer.send_and_wait(topic, value, key=encoded_key)

    async def publish_command(self, **fields: Any) -> dict[str, Any]:
        """Validate and send one lifecycle command (see `command_payload`); returns its JSON."""
        payload = command_payload(**fields)
        await self.publish_raw(
            self.topics.commands_topic, payload["tenant_id"], orjson.dumps(payload)
        )
        return payload

    async def publish_lesson_command(self, topic: str, **fields: Any) -> dict[str, Any]:
        """Validate and send one lesson command (see `lesson_command_payload`) to `topic`, keyed
        by its tenant; returns its JSON."""
        payload = lesson_command_payload(**fields)
        await self.publish_raw(topic, payload["tenant_id"], orjson.dumps(payload))
        return payload

    def _routable(
        self, lines: Iterable[str | bytes], report: PublishReport
    ) -> Iterator[tuple[int, Outgoing]]:
        for number, line in enumerate(lines, start=1):
            try:
                record = route_line(line, self.topics)
            except UnroutableLine as error:
                report.skipped.append(LineProblem(number, str(error)))
                continue
            if record is not None:
                yield number, record

    async def _send_numbered(
        self,
        records: Iterable[tuple[int, Outgoing]],
        report: PublishReport,
        on_progress: Callable[[PublishReport], None] | None,
    ) -> None:
        pending: list[tuple[int, str, asyncio.Future[Any]]] = []
        for number, record in records:
            try:
                future = await self._producer.send(record.topic, record.value, key=record.key)
            except Exception as error:  # e.g. a record larger than max_request_size
                report.failed.append(LineProblem(number, _describe(error)))
                continue
            pending.append((number, record.topic, future))
            if len(pending) >= self._chunk_size:
                await _settle(pending, report)
                if on_progress is not None:
                    on_progress(report)
        await _settle(pending, report)
        if on_progress is not None:
            on_progress(report)


async def _settle(
    pending: list[tuple[int, str, asyncio.Future[Any]]], report: PublishReport
) -> None:
    """Await the in-flight sends, count the delivered ones, record the failed ones; empties it."""
    results = await asyncio.gather(*(future for _, _, future in pending), return_exceptions=True)
    for (number, topic, _), result in zip(pending, results, strict=True):
        if isinstance(result, BaseException):
            report.failed.append(LineProblem(number, _describe(result)))
        else:
            report.published[topic] += 1
    pending.clear()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".rstrip(": ")
