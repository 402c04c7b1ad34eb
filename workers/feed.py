"""One partition number as the ingest worker sees it: three topic partitions merged by time.

A `PartitionFeed` owns the partition's `PartitionAggregator`, the time merge of its three input
topic partitions, and the offsets that the next committed batch will store: the offset after the
last message taken from the merge, never one only fetched (aggregation.md, "Surviving restarts").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.aggregation import PartitionAggregator
from domain.contracts import Message, Rejection, message_time, parse_message
from domain.incidents import Incident
from domain.merge import Pending, TimeMerge
from domain.replay import SOURCE_MODELS


class Fetched(NamedTuple):
    """A fetched record, parsed, with what a dead letter needs of the original."""

    message: Message | Rejection
    key: bytes | None
    value: bytes | None


class PartitionFeed:
    """The merge, aggregator and offsets of one partition number; see the module docstring."""

    def __init__(
        self,
        partition: int,
        topics: Sequence[str],
        aggregator: PartitionAggregator,
        next_offsets: dict[str, int],
        *,
        max_idle_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.partition = partition
        self.topics = tuple(topics)
        self.tps = tuple(TopicPartition(topic, partition) for topic in topics)
        self.aggregator = aggregator
        self._merge: TimeMerge[Fetched] = TimeMerge(len(topics))
        # The offset the next committed batch stores per source (None: nothing taken yet).
        self.next_offsets: list[int | None] = [next_offsets.get(topic) for topic in topics]
        self._fetched_next: list[int | None] = list(self.next_offsets)
        self._blocked_since: list[float | None] = [None] * len(topics)
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

    def push(self, source: int, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """Parse and buffer fetched records of one source, in offset order.

        Records already taken (offset behind what was fetched) are ignored: a seek back after
        a reload may hand them out again.
        """
        expected = self._fetched_next[source]
        model = SOURCE_MODELS[source]
        entries = []
        for record in records:
            if expected is not None and record.offset < expected:
                continue
            expected = record.offset + 1
            parsed = parse_message(model, record.value)
            time = None if isinstance(parsed, Rejection) else message_time(parsed)
            entries.append(
                Pending(time, source, record.offset, Fetched(parsed, record.key, record.value))
            )
        if entries:
            self._fetched_next[source] = expected
            self._blocked_since[source] = None
            self.last_received = self._clock()
            self._merge.extend(source, entries)

    def take(self, limit: int, at_end: Callable[[TopicPartition], bool]) -> list[Pending[Fetched]]:
        """Up to `limit` messages in merge order, stopping where the merge must wait.

        An empty source that is not at its end holds the merge back for at most
        `max_idle_seconds` from the moment it was first found empty.
        """
        now = self._clock()
        # Within one take nothing is fetched, so whether a source is at its end cannot change.
        ended: dict[int, bool] = {}

        def waiting(source: int) -> bool:
            if source not in ended:
                ended[source] = at_end(self.tps[source])
            if ended[source]:
                return False
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
        """True if some source was found empty and its idle wait has not run out yet."""
        now = self._clock()
        return any(
            since is not None and now - since < self._max_idle for since in self._blocked_since
        )

    def offsets_to_store(self) -> dict[str, int]:
        return {
            topic: offset
            for topic, offset in zip(self.topics, self.next_offsets, strict=True)
            if offset is not None
        }
