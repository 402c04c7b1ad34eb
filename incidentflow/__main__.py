"""`python -m incidentflow` is the `incidentflow` command."""

from incidentflow.cli import main

raise SystemExit(main())
