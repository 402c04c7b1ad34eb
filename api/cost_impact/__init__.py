"""`/v1/incidents/cost-impact`: what failures cost, by category and resolution method."""
