"""Benchmarks, each printing its ratio against the baseline its issue names. Run one from the
repository root as a module: ``python -m benchmarks.masks``; `make bench` runs them all."""
