"""prewarm_worker function package."""
