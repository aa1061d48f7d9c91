"""Benchmark suite: the 784-128-10 MNIST MLP trained with plain SGD, in several frameworks.

Run ``python benchmarks/run.py --help``; see ``benchmarks/README.md`` for what is measured.
"""
