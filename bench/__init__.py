"""Benchmarks (not tests): `python -m bench quality` trains the zoo to its published results."""
