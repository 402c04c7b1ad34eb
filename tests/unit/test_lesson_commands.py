"""The lesson commands sink: decoding, retries, and dead-letter copies sent after the commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import OperationalError

from storage.effects import DeadLetterRow
from storage.triage_store import CommandMessage, TriageResult
from workers.changes import DeadLetterRecord
from workers.guard import DeadLetterGuard
from workers.lesson_commands import CommandSink, decode_commands
from workers.processors import ChangeMessage
from workers.telemetry import ProcessorMetrics

LESSON = uuid.UUID("0b9a6a34-5c2e-5d7f-9a1b-2c3d4e5f6a7b")
VALID = orjson.dumps(
    {
        "command_id": "c-1",
        "tenant_id": "acme",
        "lesson_id": str(LESSON),
        "action": "dismiss",
        "issued_at": datetime(2026, 11, 22, tzinfo=UTC).isoformat(),
    }
)


def record(offset: int, value: bytes | None) -> ChangeMessage:
    return ChangeMessage("lesson.commands", 3, offset, b"acme", value)


class FakeWriter:
    """Fails the first `failures` calls, then rejects every command as an unknown lesson."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[list[CommandMessage], list[DeadLetterRow]]] = []

    async def apply(
        self, commands: Sequence[CommandMessage], dead_letters: Sequence[DeadLetterRow] = ()
    ) -> TriageResult:
        if self.failures:
            self.failures -= 1
            raise OperationalError("SELECT 1", {}, ConnectionError("server closed"))
        self.calls.append((list(commands), list(dead_letters)))
        rejected = [
            DeadLetterRow(m.topic, m.partition, m.offset, m.key, "unknown_lesson", "no", m.value)
            for m in commands
        ]
        return TriageResult(applied=0, duplicates=0, dead_letters=[*dead_letters, *rejected])


class FakeSend:
    """Records the dead-letter copies; fails the first `failures` sends."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[DeadLetterRecord] = []

    async def __call__(self, copy: DeadLetterRecord) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker away")
        self.sent.append(copy)


async def no_sleep(seconds: float) -> None:
    pass


def test_records_that_are_no_command_become_dead_letters_naming_the_field() -> None:
    commands, dead = decode_commands([record(0, VALID), record(1, b"{x"), record(2, None),
                                      record(3, b'{"tenant_id": "acme"}')])  # fmt: skip
    assert [(m.offset, m.command.command_id) for m in commands] == [(0, "c-1")]
    assert [(row.source_offset, row.reason) for row in dead] == [
        (1, "invalid_json"), (2, "invalid_json"), (3, "schema_violation"),
    ]  # fmt: skip
    assert dead[2].detail.startswith("command_id: ") and dead[0].payload == b"{x"


async def test_dead_letters_are_copied_with_their_reason_after_the_commit() -> None:
    writer, send = FakeWriter(failures=2), FakeSend(failures=1)
    metrics = ProcessorMetrics(DeadLetterGuard(0.5, 100))
    sink = CommandSink(writer, send, retry_delays=(0.1, 0.1), sleep=no_sleep, metrics=metrics)
    result = await sink.apply([record(7, VALID), record(8, b"{x")])
    assert len(writer.calls) == 1
    assert [row.reason for row in result.dead_letters] == ["invalid_json", "unknown_lesson"]
    headers = [dict(copy.headers) for copy in send.sent]
    assert [(h["x-error-reason"], h["x-source-offset"]) for h in headers] == [
        (b"invalid_json", b"8"), (b"unknown_lesson", b"7"),
    ]  # fmt: skip
    assert send.sent[1].value == VALID and send.sent[1].key == b"acme"
    counted = {
        (sample.labels.get("outcome") or sample.labels.get("operation"), sample.value)
        for family in metrics.registry.collect()
        if family.name
        in ("incidentflow_processors_lesson_commands", "incidentflow_processors_retries")
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted == {("invalid_json", 1), ("unknown_lesson", 1), ("database", 2), ("publish", 1)}


async def test_the_sink_raises_once_the_retries_run_out() -> None:
    sink = CommandSink(FakeWriter(failures=3), FakeSend(), retry_delays=(0.1, 0.1), sleep=no_sleep)
    with pytest.raises(OperationalError):
        await sink.apply([record(0, VALID)])
    failing = CommandSink(FakeWriter(), FakeSend(failures=5), retry_delays=(0.1,), sleep=no_sleep)
    with pytest.raises(KafkaConnectionError):
        await failing.apply([record(0, VALID)])
