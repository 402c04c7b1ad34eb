"""The dead-letter guard: a partition whose recent messages are mostly dead letters.

A producer that sends the wrong schema turns every message into a dead letter: nothing is lost,
but nothing is applied either, and the dead-letter topic fills. The guard keeps, per partition,
the outcome of the last `window` messages (applied or duplicate versus dead-lettered) and fires
when more than `share` of them were dead-lettered, once it has seen at least a tenth of the window.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from workers.faults import WorkerStop


class DeadLettersAboveLimit(WorkerStop):
    """The guard fired with `dead_letter_guard_action` set to `stop`."""


@dataclass(frozen=True, slots=True)
class GuardReport:
    """The state of one partition's guard after a batch."""

    partition: int
    share: float
    messages: int
    firing: bool
    started: bool
    """True on the batch that made it fire (it was not firing before)."""
    top_reason: str | None

    def describe(self, limit: float) -> str:
        return (
            f"partition {self.partition}: {self.share:.0%} of the last {self.messages} messages "
            f"were dead-lettered (more than {limit:.0%}; most often {self.top_reason}); "
            "a producer may be sending the wrong schema"
        )


class DeadLetterGuard:
    """Sliding windows of message outcomes, one per partition."""

    def __init__(self, share: float, window: int) -> None:
        self.share = share
        self.window = window
        self._outcomes: dict[int, deque[str | None]] = {}
        self._firing: set[int] = set()

    def record(self, partition: int, outcomes: list[str | None]) -> GuardReport:
        """Add a batch's outcomes (a dead-letter reason, or None for a message that was not
        dead-lettered) and say whether the guard fires on `partition`."""
        recent = self._outcomes.setdefault(partition, deque(maxlen=self.window))
        recent.extend(outcomes)
        reasons = Counter(reason for reason in recent if reason is not None)
        dead = sum(reasons.values())
        share = dead / len(recent) if recent else 0.0
        firing = len(recent) >= max(self.window // 10, 1) and share > self.share
        started = firing and partition not in self._firing
        if firing:
            self._firing.add(partition)
        else:
            self._firing.discard(partition)
        top = reasons.most_common(1)[0][0] if reasons else None
        return GuardReport(partition, share, len(recent), firing, started, top)

    def forget(self, partition: int) -> None:
        self._outcomes.pop(partition, None)
        self._firing.discard(partition)
