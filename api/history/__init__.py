"""`/v1/incidents/historical`: incidents and cost per UTC bucket, and their distribution."""
