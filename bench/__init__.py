"""City-scale benchmarks (see docs/performance.md)."""
