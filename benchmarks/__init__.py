"""Benchmarks of sv_sdk flows, run by `make bench`; results go to docs/benchmarks.md."""
