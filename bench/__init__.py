"""Benchmarks: `make bench` runs them all, `make bench-<name>` one (see ../shared/BENCHMARKS.md)."""
