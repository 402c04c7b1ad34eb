"""`/v1/incidents/{incident_id}/export`: the bundles of `domain.evidence`, `domain.soc2` and
`domain.debrief`, as bundle files (JSON) and PDFs."""
