"""`/v1/lessons`: lessons learned from incidents, their triage state and counts."""
