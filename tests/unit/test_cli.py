"""The command line, run in-process: parsing, user errors (exit 2, one line) and `schemas`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incidentflow.cli import build_parser, main
from incidentflow.schemas import SCHEMA_MODELS


@pytest.fixture(autouse=True)
def no_infrastructure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its settings from the environment: start each test without any."""
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "INCIDENTFLOW_DATABASE_URL",
                 "INCIDENTFLOW_KAFKA_BOOTSTRAP_SERVERS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["dev"], {"command": "dev", "demo": False}),
        (["dev", "--demo"], {"demo": True}),
        (["ingest", "--stop-when-caught-up"], {"stop_when_caught_up": True}),
        (["api", "--host", "0.0.0.0", "--port", "9000"], {"host": "0.0.0.0", "port": 9000}),
        (["publish", "events.jsonl"], {"file": Path("events.jsonl"), "demo": False}),
        (
            ["publish", "--demo", "--rate", "200", "--tenants", "8", "--duration", "30"],
            {"file": None, "demo": True, "rate": 200.0, "tenants": 8, "duration": 30.0},
        ),
        (
            ["command", "resolve", "0b5c6f0e-3d1c-5a5e-9a39-3c1b3a1f0c11", "--tenant", "acme",
             "--by", "alice", "--method", "rollback", "--note", "rolled back"],
            {"action": "resolve", "tenant": "acme", "by": "alice", "method": "rollback"},
        ),
        (["keys", "create", "--ops"], {"keys_action": "create", "ops": True}),
        (["schemas"], {"out": Path("schemas")}),
    ],
)  # fmt: skip
def test_arguments_parse(argv: list[str], expected: dict[str, object]) -> None:
    args = build_parser().parse_args(argv)
    assert {name: getattr(args, name) for name in expected} == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["publish"],
        ["publish", "a.jsonl", "--demo"],
        ["publish", "--demo", "--rate", "0"],
        ["command", "acknowledge", "some-id"],
        ["command", "close", "some-id", "--tenant", "acme"],
        ["command", "resolve", "x", "--tenant", "acme", "--method", "yolo"],
        ["keys"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: incidentflow" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "schemas" in capsys.readouterr().out


def test_schemas_writes_every_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "schemas"
    assert main(["schemas", "--out", str(out)]) == 0
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(f"{name}.schema.json" for name in SCHEMA_MODELS)
    for path in out.iterdir():
        assert json.loads(path.read_text())["type"] == "object"
    assert capsys.readouterr().out.count(".schema.json") == len(SCHEMA_MODELS)


def test_publish_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["publish", str(missing)]) == 2
    captured = capsys.readouterr()
    assert one_line(captured.err) == f"incidentflow publish: no such file: {missing}"
    assert "Traceback" not in captured.err


def test_publish_without_a_broker_setting_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "llm_call_failure", "tenant_id": "acme"}\n')
    assert main(["publish", str(events)]) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["migrate"], "DATABASE_URL is not set"),
        (["ingest"], "DATABASE_URL is not set"),
        (["command", "acknowledge", "not-a-uuid", "--tenant", "acme"], "not a UUID"),
        (
            ["command", "acknowledge", "0b5c6f0e-3d1c-5a5e-9a39-3c1b3a1f0c11", "--tenant", "acme",
             "--method", "rollback"],
            "--method is only allowed with 'resolve'",
        ),
        (
            ["command", "acknowledge", "0b5c6f0e-3d1c-5a5e-9a39-3c1b3a1f0c11", "--tenant", "acme"],
            "KAFKA_BOOTSTRAP_SERVERS is not set",
        ),
    ],
)  # fmt: skip
def test_user_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in one_line(capsys.readouterr().err)


def test_a_bad_tenant_id_is_rejected_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    argv = ["command", "resolve", "0b5c6f0e-3d1c-5a5e-9a39-3c1b3a1f0c11", "--tenant", "no spaces"]
    assert main(argv) == 2
    assert "tenant_id" in one_line(capsys.readouterr().err)


def test_a_malformed_setting_is_a_user_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INCIDENTFLOW_TOPIC_PARTITIONS", "many")
    assert main(["schemas", "--out", "unused"]) == 2
    assert "topic_partitions" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        (["processors"], "DATABASE_URL"),
        (["api"], "DATABASE_URL"),
        (["keys", "list"], "DATABASE_URL"),
    ],
)
def test_commands_needing_the_database_name_the_missing_setting(
    argv: list[str],
    variable: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("INCIDENTFLOW_DATABASE_URL", raising=False)
    assert main(argv) == 2
    assert variable in one_line(capsys.readouterr().err)


LESSON_ID = "5f0c8a39-4d6e-5b1a-8e2f-3c7d9a1b2e40"


def test_lesson_commands_parse() -> None:
    args = build_parser().parse_args(
        ["command", "defer", LESSON_ID, "--tenant", "acme", "--until", "2026-12-01T09:00:00Z",
         "--by", "alice", "--note", "after the release"]
    )  # fmt: skip
    assert (args.action, args.target_id, args.until, args.by) == (
        "defer", LESSON_ID, "2026-12-01T09:00:00Z", "alice",
    )  # fmt: skip
    converted = build_parser().parse_args(
        ["command", "convert", LESSON_ID, "--tenant", "acme", "--draft", "cap retries"]
    )
    assert converted.draft == "cap retries"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["command", "dismiss", "not-a-uuid", "--tenant", "acme"], "LESSON_ID is not a UUID"),
        (["command", "defer", LESSON_ID, "--tenant", "acme"], "--until is required to defer"),
        (["command", "convert", LESSON_ID, "--tenant", "acme"], "--draft is required to convert"),
        (["command", "dismiss", LESSON_ID, "--tenant", "acme", "--until", "2026-12-01T09:00:00Z"],
         "--until is only allowed with 'defer'"),
        (["command", "defer", LESSON_ID, "--tenant", "acme", "--until", "2026-12-01T09:00:00Z",
          "--draft", "x"], "--draft is only allowed with 'convert'"),
        (["command", "dismiss", LESSON_ID, "--tenant", "acme", "--method", "rollback"],
         "--method is only allowed with 'resolve'"),
        (["command", "resolve", LESSON_ID, "--tenant", "acme", "--draft", "x"],
         "--draft is only allowed with a lesson command"),
        (["command", "defer", LESSON_ID, "--tenant", "acme", "--until", "2000-01-01T00:00:00Z"],
         "until"),
        (["command", "defer", LESSON_ID, "--tenant", "acme", "--until", "tomorrow"], "until"),
        (["command", "reactivate", LESSON_ID, "--tenant", "acme"],
         "KAFKA_BOOTSTRAP_SERVERS is not set"),
    ],
)  # fmt: skip
def test_lesson_command_user_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in one_line(capsys.readouterr().err)
