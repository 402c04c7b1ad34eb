"""Joining the consumer group, and leaving it, without waiting forever.

A consumer's `start()` joins the group and waits for its first assignment. On the embedded broker
it can wait forever when it starts right after other members left (measured: 5 of 6 tries in a
small reproduction). `join_group` gives start-up and join `timeout` seconds, then stops that
consumer and starts a new one, logging each attempt, until the broker outage limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from workers.faults import Outage, describe
from workers.protocols import Consumer

log = logging.getLogger("incidentflow.ingest")

STOP_TIMEOUT = 10.0


async def join_group(
    make_consumer: Callable[[], Consumer],
    topics: list[str],
    listener: ConsumerRebalanceListener,
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline per attempt, not for the whole call
    outage: Outage,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Consumer:
    """A started consumer subscribed to `topics` that has joined its group.

    `make_consumer` is called for each attempt; the listener's callbacks run inside `start()`, so
    whoever they call must already know the new consumer. Raises `OutageExceeded` once the
    attempts have failed for longer than the outage limit.
    """
    while True:
        consumer = make_consumer()
        consumer.subscribe(topics, listener=listener)
        try:
            await asyncio.wait_for(consumer.start(), timeout)
        except (TimeoutError, KafkaError, OSError) as error:
            if isinstance(error, TimeoutError):
                error = TimeoutError(f"start-up and group join took over {timeout:g} s")
            await stop_consumer(consumer)
            await sleep(outage.failed(error, "starting the consumer and joining the group"))
            continue
        outage.recovered()
        return consumer


async def stop_consumer(consumer: Consumer) -> None:
    """Stop `consumer`, waiting at most STOP_TIMEOUT seconds: a broker that does not answer
    cannot hold up an exit."""
    try:
        await asyncio.wait_for(consumer.stop(), STOP_TIMEOUT)
    except asyncio.CancelledError as error:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being cancelled ourselves
        # aiokafka's fetcher task, cancelled by its own stop, can surface here
        log.warning("the consumer did not stop cleanly: %s", describe(error))
    except (TimeoutError, KafkaError, OSError) as error:
        log.warning("the consumer did not stop cleanly: %s", describe(error))
