"""``edgefill doctor``: is a deployed stack wired right?

``facts`` reads the stack, the distribution, the bucket policy, the queues, the event
source mappings and the workers' last hour from AWS (every read in one place, each
failure kept as a reason); ``checks`` turns those facts into eleven pass/fail verdicts with
a detail and a remedy line; ``canary`` runs one real object through the distribution."""
