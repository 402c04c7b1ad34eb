"""`/v1/incidents/patterns`: category clusters, severity spikes and cascades forming now."""
