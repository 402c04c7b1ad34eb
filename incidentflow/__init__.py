"""The composition root: the `incidentflow` command line, the wiring of each process (ingest,
processors, API), the one-machine dev stack with its embedded infrastructure, and demo traffic.

It is the only package that sees every layer (`workers`, `api`, `storage`, `domain`); none of
them imports it.
"""
