"""Benchmark of the active-sessions grid on a large workspace (`make bench`)."""
