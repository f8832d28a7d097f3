"""Benchmarks: ``python -m bench.train`` and ``python -m bench.serve`` (docs/performance.md)."""
