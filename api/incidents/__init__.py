"""`/v1/incidents`: the tenant's incidents, one incident, its timeline, events and learnings."""
