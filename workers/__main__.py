"""`python -m workers` is the `incidentflow` command."""

from workers.cli import main

raise SystemExit(main())
