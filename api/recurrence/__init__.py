"""`/v1/incidents/recurring`: what keeps recurring, by category and method and by fingerprint."""
