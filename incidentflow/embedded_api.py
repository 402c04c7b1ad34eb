"""The read API served inside another asyncio program (`incidentflow dev`) with uvicorn.

The embedded server leaves signal handling to its host: the host stops it with `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from incidentflow.infra import free_port


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers of its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class RunningApi:
    """An API served on `url` until `stop()`."""

    def __init__(self, server: EmbeddedServer, task: asyncio.Task[None], url: str) -> None:
        self.server, self.task, self.url = server, task, url

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_api(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> RunningApi:
    """Serve `app` on `host` (on `port`, or a free one if taken); returns once it listens."""
    port = free_port(host, port)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the API server stopped while starting")
        await asyncio.sleep(0.05)
    return RunningApi(server, task, f"http://{host}:{port}")
