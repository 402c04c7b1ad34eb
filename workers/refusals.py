"""Finding the message PostgreSQL refuses, by halving the batches that contain it.

The contracts accept only what the tables can hold, so a data refusal (`faults.is_data_error`)
should never happen; if one does, it must not block the partition. When a batch of n messages is
refused, the worker reloads its state and writes the same messages again in batches of at most
ceil(n / 2), one at a time, until those n messages are written; a refused batch inside that
window halves the limit again around its own messages. A refused batch of one message names the
message responsible: it is dead-lettered as `storage_rejected` with the database's message, and
batches go back to their full size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from domain.contracts import printable
from workers.batch import Source

log = logging.getLogger("incidentflow.ingest")
MAX_REFUSAL_DETAIL_BYTES = 2000


class RefusalSearch:
    """The state of the search: the batch limit while it runs, and the refused messages."""

    def __init__(self) -> None:
        self.limit: int | None = None
        """The largest batch while searching, None when not searching."""
        self._remaining = 0
        self._refused: dict[Source, str] = {}

    @property
    def refused(self) -> Mapping[Source, str]:
        """Messages to dead-letter as `storage_rejected`, with the database's message."""
        return self._refused

    @property
    def busy(self) -> bool:
        return self.limit is not None or bool(self._refused)

    def knows(self, sources: Sequence[Source]) -> bool:
        """True if every message of a batch is already refused: a refusal of such a batch is
        not caused by their data (the dead letters themselves fail), so it is retried."""
        return all(source in self._refused for source in sources)

    def refusal(self, sources: Sequence[Source], detail: str) -> None:
        """A batch of these messages was refused for a data reason."""
        detail = printable(detail, MAX_REFUSAL_DETAIL_BYTES)
        if len(sources) > 1:
            self.limit = (len(sources) + 1) // 2
            self._remaining = len(sources)
            log.warning(
                "PostgreSQL refused a batch of %d messages (%s); writing them in batches of %d "
                "to find the message responsible", len(sources), detail, self.limit,
            )  # fmt: skip
            return
        topic, partition, offset = source = sources[0]
        self._refused[source] = detail
        self.limit = None
        log.error("PostgreSQL refused %s[%d]@%d (%s): dead-lettered as storage_rejected",
                  topic, partition, offset, detail)  # fmt: skip

    def committed(self, sources: Sequence[Source]) -> None:
        """A batch of these messages was written."""
        for source in sources:
            self._refused.pop(source, None)
        if self.limit is None:
            return
        self._remaining -= len(sources)
        if self._remaining <= 0:
            log.info("the refused messages are written; batches go back to their full size")
            self.limit = None
