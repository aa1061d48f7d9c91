"""Experiments on MNIST: the tutorial reproduction, the default training recipe, plots.

Run them as scripts from the repository root, e.g. ``python experiments/train.py``.
"""
