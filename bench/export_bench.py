"""Export benchmark, pure part: a 100,000-event incident's bundles without the database.

Each step runs in a process of its own, so that its peak memory (maximum resident set size) is
its own: the JSON bundles written in chunks to a file, the PDFs (a hash pass over every event,
then a bounded rendering), and `verify` of the written evidence file. Event rows are those of
`tests.evidence_rows` (an LLM failure row with metadata, as the API reads it). The API's export
adds reading the rows from PostgreSQL (a server-side cursor) to these numbers.

usage: python -m bench.export_bench [--events N]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("evidence-json", "soc2-json", "debrief-json", "evidence-pdf", "soc2-pdf", "verify")


def run_step(step: str, events: int, path: Path) -> str:
    from api.exports.pdf import PDF_EVENT_LIMIT, render_pdf
    from domain.bundles import bundle_file, digest_bundle, stream_bundle, verify
    from domain.debrief import Recurrence, debrief
    from domain.evidence import evidence_event, evidence_parts
    from domain.soc2 import soc2_parts
    from tests.evidence_rows import failure_rows, source

    bundle_source = source(calls_affected=events)
    kind = step.split("-")[0]
    rows = map(evidence_event, failure_rows(events))
    if step == "verify":
        result = verify(path.read_bytes())
        assert result.intact, result.detail
        return f"intact={result.intact}"
    if kind == "debrief":
        data = bundle_file(debrief(bundle_source, Recurrence(30, 2)))
        path.write_bytes(data)
        return f"bytes={len(data):,}"
    parts = evidence_parts(bundle_source) if kind == "evidence" else soc2_parts(bundle_source)
    if step.endswith("-json"):
        size = 0
        with path.open("wb") as file:
            for chunk in stream_bundle(parts, rows):
                file.write(chunk)
                size += len(chunk)
        return f"bytes={size:,}"
    digest = digest_bundle(parts, rows, sample=PDF_EVENT_LIMIT)
    hashed = time.process_time()
    pdf = render_pdf(parts, digest)
    assert render_pdf(parts, digest) == pdf
    return f"bytes={len(pdf):,} render_cpu_s={(time.process_time() - hashed) / 2:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step is not None:
        started, cpu = time.perf_counter(), time.process_time()
        note = run_step(args.step, args.events, args.path)
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{args.step:14} wall_s={wall:6.2f} cpu_s={used:6.2f} peak_rss_MB={peak:5.0f} {note}")
        return
    with tempfile.TemporaryDirectory() as folder:
        evidence = Path(folder) / "evidence.json"
        print(f"{args.events:,} events")
        for step in STEPS:
            path = evidence if step in ("evidence-json", "verify") else Path(folder) / step
            command = [
                sys.executable,
                "-m",
                "bench.export_bench",
                "--events",
                str(args.events),
                "--step",
                step,
                "--path",
                str(path),
            ]
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
