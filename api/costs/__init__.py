"""`/v1/costs`: the spend lost in a period, its trend, and what drives it."""
