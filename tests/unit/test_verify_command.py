"""`incidentflow verify BUNDLE.json`: one line, and an exit status that says intact or not."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from domain.bundles import bundle_file
from incidentflow.cli import main

BUNDLE = {"kind": "evidence", "bundle_id": "EVD-0123456789ab", "events": [{"n": 1}, {"n": 2}]}


def run(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["verify", str(path)])
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 1, out
    return status, lines[0]


def test_an_untouched_bundle_is_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bundle.json"
    data = bundle_file(BUNDLE)
    path.write_bytes(data)
    digest = hashlib.sha256(data[len(b'{"bundle":') : data.index(b',"integrity":')]).hexdigest()
    assert run(path, capsys) == (0, f"intact: {digest}")


def test_one_changed_byte_is_an_alteration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bundle_file(BUNDLE)
    path = tmp_path / "bundle.json"
    path.write_bytes(data.replace(b'"n":2', b'"n":3'))
    status, line = run(path, capsys)
    assert status == 1
    assert line.startswith("altered: expected ")
    stated, computed = line.removeprefix("altered: expected ").split(" got ")
    assert stated in data.decode() and computed != stated


@pytest.mark.parametrize(
    ("content", "status", "start"),
    [
        (b'{"bundle":{"n":1.5},"integrity":{}}', 1, "altered: number 1.5 is not an integer"),
        (b"not json", 2, "unreadable: not JSON in UTF-8"),
        (b"[]", 2, "not a bundle: the file is not an object"),
        (None, 2, "unreadable: cannot read"),
    ],
)
def test_a_file_that_cannot_be_checked_says_why(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    status: int,
    start: str,
) -> None:
    path = tmp_path / "bundle.json"
    if content is not None:
        path.write_bytes(content)
    found, line = run(path, capsys)
    assert found == status
    assert line.startswith(start), line
