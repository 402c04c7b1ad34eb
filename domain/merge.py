"""Time-ordered merge of one partition's three input topics, as Kafka Streams merges them.

The next message is the one with the earliest time among the heads (ties: the lower source, which
is the topic order failures, violations, commands; then offset). A message without a time (it could
not be parsed) is taken as soon as it is at a head. An empty source that may still deliver makes the
merge wait: the caller decides, through `waiting`, how long that lasts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")


class Pending(NamedTuple, Generic[T]):
    """A fetched message waiting in the merge (a tuple: one is made per message)."""

    time: datetime | None
    source: int
    offset: int
    item: T


class TimeMerge(Generic[T]):
    """Buffers of the sources of one partition, popped in merge order."""

    def __init__(self, sources: int = 3) -> None:
        self._queues: list[deque[Pending[T]]] = [deque() for _ in range(sources)]

    def push(self, pending: Pending[T]) -> None:
        """Append a message; messages of one source must come in offset order."""
        self._queues[pending.source].append(pending)

    def extend(self, source: int, entries: Iterable[Pending[T]]) -> None:
        """Append several messages of one source, in offset order."""
        self._queues[source].extend(entries)

    def buffered(self, source: int) -> int:
        return len(self._queues[source])

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues)

    def pop(self, waiting: Callable[[int], bool]) -> Pending[T] | None:
        """The next message in merge order, or None when empty or waiting on an empty source.

        `waiting(source)` is asked about each empty source: True means it may still deliver an
        earlier message and the merge must wait for it.
        """
        for queue in self._queues:
            if queue and queue[0].time is None:
                return queue.popleft()
        best: Pending[T] | None = None
        for source, queue in enumerate(self._queues):
            if not queue:
                if waiting(source):
                    return None
                continue
            head = queue[0]
            if best is None or (
                best.time is not None and head.time is not None and head.time < best.time
            ):
                best = head
        if best is None:
            return None
        return self._queues[best.source].popleft()


def merge_complete(sources: Sequence[Sequence[Pending[T]]]) -> Iterator[Pending[T]]:
    """Merge fully written sources: what a live merge yields when nothing arrives late."""
    merge: TimeMerge[T] = TimeMerge(len(sources))
    for source in sources:
        for entry in source:
            merge.push(entry)
    while True:
        pending = merge.pop(lambda source: False)
        if pending is None:
            return
        yield pending
