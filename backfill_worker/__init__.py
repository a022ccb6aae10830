"""backfill_worker function package."""
