"""Source readers: each turns one kind of input into per-case jobs (see `ingest.job.Source`)."""
