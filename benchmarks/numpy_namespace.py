"""Per-call overhead of ``tinygrad_np.numpy`` over NumPy itself, on plain arrays.

    python benchmarks/numpy_namespace.py [--repeats 15]

Each call is timed through both namespaces, interleaved, and the best of the repeats is
kept (the least disturbed by other work on the machine).
"""

from __future__ import annotations

import argparse
import timeit

import numpy

import tinygrad_np.numpy as tnp

X = numpy.linspace(0.0, 1.0, 16)
M = numpy.linspace(0.0, 1.0, 64).reshape(8, 8)
LIST = [1.0, 2.0, 3.0]

CALLS = {
    "sin(x), 16 floats": lambda np: np.sin(X),
    "add(x, x)": lambda np: np.add(X, X),
    "add.reduce(x)": lambda np: np.add.reduce(X),
    "maximum.accumulate(x)": lambda np: np.maximum.accumulate(X),
    "mean(x)": lambda np: np.mean(X),
    "linalg.norm(m)": lambda np: np.linalg.norm(M),
    "concatenate([x, x])": lambda np: np.concatenate([X, X]),
    "array([1.0, 2.0, 3.0])": lambda np: np.array(LIST),
    "asarray(x)": lambda np: np.asarray(X),
    "r_[x, 0.0]": lambda np: np.r_[X, 0.0],
}


def best_of(call, namespace, number: int, repeats: int) -> float:
    return min(timeit.repeat(lambda: call(namespace), number=number, repeat=repeats)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    options = parser.parse_args()
    print(f"{'call':26} {'numpy (us)':>11} {'namespace (us)':>15} {'overhead (us)':>14}")
    for name, call in CALLS.items():
        plain = namespaced = float("inf")
        for _ in range(options.repeats):  # interleaved, so both see the same machine
            plain = min(plain, best_of(call, numpy, options.number, 1))
            namespaced = min(namespaced, best_of(call, tnp, options.number, 1))
        print(
            f"{name:26} {plain * 1e6:11.2f} {namespaced * 1e6:15.2f} "
            f"{(namespaced - plain) * 1e6:14.2f}"
        )


if __name__ == "__main__":
    main()
