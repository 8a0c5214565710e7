"""Benchmarks that print tables (medians of several runs).

Torch (training image only): forward, engine, clip, encoder. Torch-free, and copied into
the serving image for `gad bench service / load / soak`: launch, streams, service, load,
soak, usage.
"""
