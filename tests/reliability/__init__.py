"""Reliability and scale-out scenarios: failover, restarts, partitions, breaker, fuzzing,
security, bounded memory. Every test here starts real servers."""
