"""The sink of the lesson commands agent: decode, apply in one transaction, copy dead letters.

A batch of lesson commands topic records is decoded (`domain.lesson_triage.parse_command`);
the commands and the records that are none go to the writer in one transaction
(`storage.triage_store.TriageStore`), which applies each new command id and dead-letters what it
cannot apply (`unknown_lesson`, `invalid_transition`). Once that transaction committed, every dead
letter of the batch is copied to the dead-letter topic (original bytes, `x-error-*` headers);
only then does the agent ack the batch. Database errors and failed sends are retried in place
with back-off, then raised (the worker stops): a redelivered batch finds its commands applied
(duplicates, no effect) and its dead letters recorded, and sends their copies again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from domain.contracts import Rejection
from domain.lesson_triage import parse_command
from storage.effects import DeadLetterRow
from storage.triage_store import CommandMessage, TriageResult
from workers.changes import dead_letter_record
from workers.processors import RETRY_DELAYS, ChangeMessage, DeadLetterSend, retried
from workers.telemetry import ProcessorMetrics

log = logging.getLogger("incidentflow.processors")

APPLIED = "applied"
DUPLICATE = "duplicate"
"""A command's outcomes beside the dead-letter reasons, in `lesson_commands(outcome, count)`."""


class TriageWriter(Protocol):
    """Applies a batch of commands in one transaction, or raises having written nothing."""

    async def apply(
        self, commands: Sequence[CommandMessage], dead_letters: Sequence[DeadLetterRow] = ()
    ) -> TriageResult: ...


def decode_commands(
    messages: Sequence[ChangeMessage],
) -> tuple[list[CommandMessage], list[DeadLetterRow]]:
    """The commands of the messages, and a dead-letter row for each message that is none
    (`invalid_json`, `too_large` or `schema_violation`, the detail naming the field at fault)."""
    commands: list[CommandMessage] = []
    dead: list[DeadLetterRow] = []
    for m in messages:
        parsed = parse_command(m.value)
        if isinstance(parsed, Rejection):
            row = (m.topic, m.partition, m.offset, m.key, parsed.reason.value, parsed.detail)
            dead.append(DeadLetterRow(*row, m.value))
        else:
            commands.append(CommandMessage(m.topic, m.partition, m.offset, m.key, m.value, parsed))
    return commands, dead


class CommandSink:
    """Applies lesson command batches; see the module docstring."""

    def __init__(
        self,
        writer: TriageWriter,
        send: DeadLetterSend,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        self._writer = writer
        self._send = send
        self._delays = tuple(retry_delays)
        self._sleep = sleep
        self._metrics = metrics
        self._on_retry = metrics.retry if metrics is not None else None

    async def apply(self, messages: Sequence[ChangeMessage]) -> TriageResult:
        """Apply the batch and send its dead-letter copies; raises the last error once the
        retries are exhausted."""
        commands, dead_letters = decode_commands(messages)
        result = await retried(
            lambda: self._writer.apply(commands, dead_letters),
            f"batch of {len(messages)} lesson commands",
            self._delays,
            self._sleep,
            on_retry=self._on_retry,
        )
        for row in result.dead_letters:
            await self._copy(row)
        if self._metrics is not None:
            outcomes = Counter(row.reason for row in result.dead_letters)
            outcomes.update({APPLIED: result.applied, DUPLICATE: result.duplicates})
            for outcome, count in outcomes.items():
                if count:
                    self._metrics.lesson_commands(outcome, count)
        return result

    async def _copy(self, row: DeadLetterRow) -> None:
        """Log a dead letter and send its copy to the dead-letter topic."""
        source = f"{row.source_topic}/{row.source_partition}@{row.source_offset}"
        log.error("lesson command %s rejected (%s): %s", source, row.reason, row.detail)
        record = dead_letter_record(row)
        await retried(
            lambda: self._send(record),
            f"dead-letter copy of {source}",
            self._delays,
            self._sleep,
            errors=(KafkaError, OSError, TimeoutError),
            operation="publish",
            on_retry=self._on_retry,
        )
