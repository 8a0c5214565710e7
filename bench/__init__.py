"""Benchmarks that print tables (medians of several runs). Not in the serving image;
the service benchmarks (`bench.service`, `bench.load`) are torch-free."""
