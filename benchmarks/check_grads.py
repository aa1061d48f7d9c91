"""How long ``check_grads`` takes on the 784-128-10 MLP (101,770 parameters), batch 32, float64.

The default method at this size compares random projections (``method="projection"``);
the per-element method (``method="elementwise"``) is timed once for the ratio, first
order only (it takes a minute or more). Medians of ``--repeats`` runs, one process.

    python benchmarks/check_grads.py [--repeats 5] [--skip-elementwise]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.forward_mode import _cpu
from experiments import model
from tinygrad_np.testing import check_grads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-elementwise", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    params = model.init_params(rng, np.float64)
    params = {k: v + rng.normal(0, 0.01, v.shape) for k, v in params.items()}  # nonzero biases
    x = rng.random((32, 784))
    labels = rng.integers(0, 10, 32)

    def loss(p: dict[str, np.ndarray]) -> object:
        return model.loss(p, x, labels)

    print(f"CPU: {_cpu()}; numpy {np.__version__}")
    print("| check (784-128-10 MLP, batch 32, float64) | time (median) |")
    print("|---|---|")
    times = {}
    for order in (1, 2):
        for modes in (("rev",), ("fwd", "rev")):
            runs = []
            for seed in range(args.repeats):
                start = time.perf_counter()
                check_grads(loss, (params,), order=order, modes=modes, seed=seed)
                runs.append(time.perf_counter() - start)
            times[order, modes] = statistics.median(runs)
            print(f"| order {order}, modes {'+'.join(modes)}, projections | "
                  f"{times[order, modes]:.3f} s |")  # fmt: skip
    if not args.skip_elementwise:
        start = time.perf_counter()
        check_grads(loss, (params,), modes="rev", method="elementwise")
        elementwise = time.perf_counter() - start
        print(f"| order 1, modes rev, elementwise | {elementwise:.1f} s |")
        print(f"\nprojections are {elementwise / times[1, ('rev',)]:.0f}x faster at order 1")


if __name__ == "__main__":
    main()
