"""`/v1/incidents/metrics`: counts, times and SLA of the incidents started in a window."""
