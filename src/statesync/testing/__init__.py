"""Test harnesses that run real processes and stores (crash campaigns); used by the test
suite and the benchmarks."""
