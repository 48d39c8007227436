"""Helpers of benchmarks/paper_scale.py: the generator, the warehouse rows, the pandas answers."""
