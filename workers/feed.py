"""One partition number as the ingest worker sees it: three topic partitions merged by time.

A `PartitionFeed` owns the partition's `PartitionAggregator`, the time merge of its three input
topic partitions, and the offsets that the next committed batch will store: the offset after the
last message taken from the merge, never one only fetched (docs/aggregation.md, "Surviving
restarts").

When the merge finds a source with nothing buffered it asks whether that source may still hold
an earlier message. A source whose fetched position is below the end offset the broker reported
(or whose end offset is not known yet) is not idle: its data is a fetch away, and the merge waits
for it however long the fetch takes. Only a source at its end is waited for, at most
`max_idle_seconds` from the moment it was found empty. This is what makes a replay of a written
log deterministic, whatever the machine's load.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.aggregation import PartitionAggregator, latest_accepted
from domain.contracts import Message, Rejection
from domain.incidents import Incident
from domain.merge import Pending, TimeMerge
from domain.replay import read_message


class Fetched(NamedTuple):
    """A fetched record, parsed, with what a dead letter needs of the original."""

    message: Message | Rejection
    key: bytes | None
    value: bytes | None


Highwater = Callable[[TopicPartition], int | None]
"""The end offset the broker last reported for a topic partition, None before any fetch."""


class PartitionFeed:
    """The merge, aggregator and offsets of one partition number; see the module docstring."""

    def __init__(
        self,
        partition: int,
        topics: Sequence[str],
        aggregator: PartitionAggregator,
        start_offsets: Sequence[int],
        *,
        max_idle_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        """`start_offsets`: per source, the offset reading starts at (the one stored with the
        last committed batch, else the partition's first)."""
        self.partition = partition
        self.topics = tuple(topics)
        self.tps = tuple(TopicPartition(topic, partition) for topic in topics)
        self.aggregator = aggregator
        self._merge: TimeMerge[Fetched] = TimeMerge(len(topics))
        # The offset the next committed batch stores per source.
        self.next_offsets: list[int] = list(start_offsets)
        self._fetched_next: list[int] = list(start_offsets)
        self._blocked_since: list[float | None] = [None] * len(topics)
        self._waiting_on_fetch = False
        self._max_idle = max_idle_seconds
        self._clock = clock
        self.last_received = clock()
        self.last_idle_advance = 0.0
        # Lengths of each incident's id lists as the batches built so far write them.
        self.stored_sizes: dict[uuid.UUID, tuple[int, int]] = {
            incident_id: (len(incident.related_call_ids), len(incident.run_ids))
            for incident_id, incident in aggregator.incidents.items()
        }

    def restore(self, incident: Incident) -> None:
        """Give the aggregator an incident loaded from storage."""
        self.aggregator.restore(incident)
        self.stored_sizes[incident.incident_id] = (
            len(incident.related_call_ids),
            len(incident.run_ids),
        )

    def evict(self) -> None:
        for incident_id in self.aggregator.evict():
            self.stored_sizes.pop(incident_id, None)

    def __len__(self) -> int:
        return len(self._merge)

    def buffered(self, source: int) -> int:
        return self._merge.buffered(source)

    def fetched_next(self, source: int) -> int:
        """The offset after the last record fetched from `source` (its read position)."""
        return self._fetched_next[source]

    def push(
        self, source: int, records: Iterable[ConsumerRecord[bytes, bytes]], now: datetime
    ) -> int:
        """Parse and buffer fetched records of one source, in offset order; returns how many.

        `now` is the wall clock at which they were read (the future guard's reference). Records
        behind the read position are ignored: a seek back after a reload may hand them out again.
        """
        expected = self._fetched_next[source]
        config = self.aggregator.config
        latest = latest_accepted(now, config)
        entries = []
        for record in records:
            if record.offset < expected:
                continue
            expected = record.offset + 1
            time, parsed = read_message(source, record.value, latest, config)
            entries.append(
                Pending(time, source, record.offset, Fetched(parsed, record.key, record.value))
            )
        if entries:
            self._fetched_next[source] = expected
            self._blocked_since[source] = None
            self.last_received = self._clock()
            self._merge.extend(source, entries)
        return len(entries)

    def take(self, limit: int, highwater: Highwater) -> list[Pending[Fetched]]:
        """Up to `limit` messages in merge order, stopping where the merge must wait."""
        now = self._clock()
        self._waiting_on_fetch = False
        # Within one take nothing is fetched, so the end offsets cannot change.
        ends: dict[int, int | None] = {}

        def waiting(source: int) -> bool:
            if source not in ends:
                ends[source] = highwater(self.tps[source])
            end = ends[source]
            if end is None or self._fetched_next[source] < end:
                self._waiting_on_fetch = True
                return True
            since = self._blocked_since[source]
            if since is None:
                self._blocked_since[source] = since = now
            return now - since < self._max_idle

        taken: list[Pending[Fetched]] = []
        while len(taken) < limit:
            pending = self._merge.pop(waiting)
            if pending is None:
                break
            self.next_offsets[pending.source] = pending.offset + 1
            taken.append(pending)
        return taken

    def is_waiting(self) -> bool:
        """True if the last `take` stopped for a fetch, or an idle wait has not run out yet."""
        if self._waiting_on_fetch:
            return True
        now = self._clock()
        return any(
            since is not None and now - since < self._max_idle for since in self._blocked_since
        )

    def offsets_to_store(self) -> dict[str, int]:
        return dict(zip(self.topics, self.next_offsets, strict=True))

    def rewind(self) -> None:
        """Forget what was fetched but not taken: the next fetch starts at `next_offsets`."""
        self._merge = TimeMerge(len(self.topics))
        self._fetched_next = list(self.next_offsets)
        self._blocked_since = [None] * len(self.topics)
