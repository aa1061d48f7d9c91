"""The engine's fixed costs, on arrays so small that NumPy's own work is negligible.

* per recorded op: a chain of ``N_OPS`` alternating multiplies and adds on a (4,) array,
  timed as plain NumPy, as tinygrad_np forward + recording (``tg.vjp``, no backward) and as
  forward + backward (``tg.grad``). (tinygrad - numpy) / N_OPS is the engine's cost per op.
* per transform call: ``tg.value_and_grad`` of ``sum(x * x)`` on a (4,) array, against the
  same value and hand-written gradient in NumPy.

Timings are the minimum over repeats of the mean per call (the usual micro-benchmark
convention: the minimum is the least disturbed estimate); medians are kept in the JSON.

    python benchmarks/micro.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N_OPS = 1000


def _bench(fn: Callable[[], Any], number: int, repeat: int) -> dict[str, float]:
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    per_call = [r / number for r in runs]
    return {"min_s": min(per_call), "median_s": statistics.median(per_call)}


def run(quick: bool = False) -> dict[str, Any]:
    try:
        import tinygrad_np as tg
    except ImportError as e:
        return {"status": "skipped", "reason": f"tinygrad_np does not import: {e}"}
    if not all(hasattr(tg, n) for n in ("grad", "vjp", "value_and_grad", "sum")):
        return {"status": "skipped", "reason": "tinygrad_np lacks grad/vjp/value_and_grad"}
    repeat = 5 if quick else 15
    x0 = np.linspace(0.5, 1.5, 4)
    half = N_OPS // 2

    def chain(x: Any) -> Any:
        for _ in range(half):
            x = x * 1.0001
            x = x + 0.001
        return x

    def chain_loss(x: Any) -> Any:
        return tg.sum(chain(x))

    grad_f = tg.grad(chain_loss)
    # the chain's own gradient check: d/dx sum(chain(x)) = 1.0001**half per element
    expected = np.full(4, 1.0001**half)
    got = grad_f(x0)
    np.testing.assert_allclose(got, expected, rtol=1e-9)

    numbers = (2 if quick else 5, 1 if quick else 3)
    t_np = _bench(lambda: chain(x0), numbers[0], repeat)
    t_rec = _bench(lambda: tg.vjp(chain, x0), numbers[1], repeat)
    t_grad = _bench(lambda: grad_f(x0), numbers[1], repeat)

    def sq(x: Any) -> Any:
        return tg.sum(x * x)

    vag = tg.value_and_grad(sq)

    def np_value_and_grad() -> tuple[Any, Any]:
        return np.sum(x0 * x0), 2 * x0

    calls = 200 if quick else 2000
    t_vag = _bench(lambda: vag(x0), calls, repeat)
    t_vag_np = _bench(np_value_and_grad, calls, repeat)

    def us(d: dict[str, float], per: int = 1) -> float:
        return 1e6 * d["min_s"] / per

    return {
        "status": "ok",
        "n_ops": N_OPS,
        "array_shape": [4],
        "numpy_chain": t_np,
        "tg_forward_record": t_rec,
        "tg_grad": t_grad,
        "tg_value_and_grad_tiny": t_vag,
        "numpy_value_and_grad_tiny": t_vag_np,
        "us_per_op": {
            "numpy": us(t_np, N_OPS),
            "tg_forward_record": us(t_rec, N_OPS),
            "tg_backward": us(t_grad, N_OPS) - us(t_rec, N_OPS),
            "tg_grad_total": us(t_grad, N_OPS),
            "tg_overhead_vs_numpy": us(t_grad, N_OPS) - us(t_np, N_OPS),
        },
        "us_per_call": {
            "tg_value_and_grad": us(t_vag),
            "numpy_by_hand": us(t_vag_np),
        },
    }


def table(res: dict[str, Any]) -> str:
    if res.get("status") != "ok":
        return f"### engine fixed cost\n\nskipped: {res.get('reason')}\n"
    op, call = res["us_per_op"], res["us_per_call"]
    return (
        f"### engine fixed cost (chain of {res['n_ops']} mul/add ops on (4,) arrays; min of"
        " repeats)\n\n"
        "| measure | us |\n|---|---|\n"
        f"| NumPy, per op | {op['numpy']:.2f} |\n"
        f"| tinygrad_np forward + record (tg.vjp), per op | {op['tg_forward_record']:.2f} |\n"
        f"| tinygrad_np backward, per op | {op['tg_backward']:.2f} |\n"
        f"| tinygrad_np tg.grad total, per op | {op['tg_grad_total']:.2f} |\n"
        f"| tg.value_and_grad(sum(x*x)), per call | {call['tg_value_and_grad']:.2f} |\n"
        f"| same in NumPy by hand, per call | {call['numpy_by_hand']:.2f} |\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    args = ap.parse_args()
    res = run(quick=args.quick)
    print(json.dumps(res, indent=1) if args.json else table(res))


if __name__ == "__main__":
    main()
