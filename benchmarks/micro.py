"""The engine's fixed costs, on arrays so small that NumPy's own work is negligible.

* per recorded op: a chain of ``N_OPS`` alternating multiplies and adds on a (4,) array,
  timed as plain NumPy, as tinygrad_np forward + recording (``tg.vjp``, no backward) and as
  forward + backward (``tg.grad``). (tinygrad - numpy) / N_OPS is the engine's cost per op.
* per transform call: ``tg.value_and_grad`` of ``sum(x * x)`` on a (4,) array, against the
  same value and hand-written gradient in NumPy.
* per optimizer step: ``tg.optim.adam``'s ``update`` plus ``apply_updates`` on the MLP's
  parameter tree (W1, b1, W2, b2, float32), against the same NumPy calls written out by hand
  (``bare_adam_step``). Timed with one-element leaves, where the arithmetic costs only its
  calls, the difference is what the pytree handling, the checks and the schedule cost per
  step; at the MLP's real sizes both are shown too (the arithmetic is then ~1 ms, so the
  difference drowns in its noise).

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

    optimizer = {
        "tiny": optimizer_overhead(quick, "tiny"),
        "mlp": optimizer_overhead(quick, "mlp"),
    }

    return {
        "status": "ok",
        "optimizer": optimizer,
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


MLP_SHAPES = {"W1": (784, 128), "b1": (1, 128), "W2": (128, 10), "b2": (1, 10)}


def bare_adam_step(
    params: dict[str, Any],
    grads: dict[str, Any],
    mu: dict[str, Any],
    nu: dict[str, Any],
    count: int,
    lr: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One Adam step as the NumPy calls ``tg.optim.adam`` + ``apply_updates`` make, and nothing
    else: no pytrees, no checks, no schedule call."""
    t = count + 1
    bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
    scale = -lr / bc1
    new_p, new_mu, new_nu = {}, {}, {}
    for k, p in params.items():
        g, m, v = grads[k], mu[k], nu[k]
        u = np.multiply(m, b1, out=np.empty_like(m))
        m1 = np.multiply(g, 1.0 - b1, out=np.empty_like(m))
        m1 += u
        np.multiply(v, b2, out=u)
        v1 = np.square(g, out=np.empty_like(m))
        v1 *= 1.0 - b2
        v1 += u
        np.divide(v1, bc2, out=u)
        np.sqrt(u, out=u)
        u += eps
        np.divide(m1, u, out=u)
        u *= scale
        new_p[k], new_mu[k], new_nu[k] = p + u, m1, v1
    return new_p, new_mu, new_nu


def optimizer_overhead(quick: bool = False, sizes: str = "tiny") -> dict[str, Any]:
    """Per-step time of ``tg.optim.adam`` (update + apply_updates) and of ``bare_adam_step``
    on the MLP's parameter tree: one-element leaves (``sizes="tiny"``) or the real ones."""
    import tinygrad_np as tg

    rng = np.random.default_rng(0)
    shapes = {k: (1, 1) if sizes == "tiny" else s for k, s in MLP_SHAPES.items()}
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    opt = tg.optim.adam(1e-3)
    state = opt.init(params)
    mu = {k: np.zeros_like(p) for k, p in params.items()}
    nu = {k: np.zeros_like(p) for k, p in params.items()}

    def library() -> Any:
        updates, _ = opt.update(grads, state, params)
        return tg.optim.apply_updates(params, updates)

    def bare() -> Any:
        return bare_adam_step(params, grads, mu, nu, 0, 1e-3)

    # The two compute the same numbers (same calls): a check that the comparison is fair.
    for a, b in zip(tg.tree_leaves(library()), tg.tree_leaves(bare()[0]), strict=True):
        np.testing.assert_array_equal(a, b)
    number = (200 if quick else 2000) if sizes == "tiny" else (5 if quick else 20)
    rounds = 5 if quick else 15
    lib_runs, bare_runs = [], []
    for _ in range(rounds):  # interleaved, so that a disturbance hits both
        lib_runs.append(timeit.timeit(library, number=number) / number)
        bare_runs.append(timeit.timeit(bare, number=number) / number)
    return {
        "sizes": {k: list(s) for k, s in shapes.items()},
        "adam_step": {"min_s": min(lib_runs), "median_s": statistics.median(lib_runs)},
        "bare_step": {"min_s": min(bare_runs), "median_s": statistics.median(bare_runs)},
        "overhead_us": 1e6 * (min(lib_runs) - min(bare_runs)),
        "overhead_us_median_of_pairs": 1e6
        * statistics.median(a - b for a, b in zip(lib_runs, bare_runs, strict=True)),
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
        + optimizer_table(res["optimizer"])
    )


def optimizer_table(optimizer: dict[str, Any]) -> str:
    tiny, mlp = optimizer["tiny"], optimizer["mlp"]
    return (
        "\n### optimizer step (tg.optim.adam update + apply_updates, MLP parameter tree,"
        " float32; min of interleaved repeats)\n\n"
        "| leaves | adam, us | same NumPy calls by hand, us | overhead, us (median of pairs) |\n"
        "|---|---|---|---|\n"
        f"| one element each | {1e6 * tiny['adam_step']['min_s']:.2f} |"
        f" {1e6 * tiny['bare_step']['min_s']:.2f} | **{tiny['overhead_us']:.2f}**"
        f" ({tiny['overhead_us_median_of_pairs']:.2f}) |\n"
        f"| the MLP's (784x128, 1x128, 128x10, 1x10) | {1e6 * mlp['adam_step']['min_s']:.0f} |"
        f" {1e6 * mlp['bare_step']['min_s']:.0f} | {mlp['overhead_us']:.0f}"
        f" ({mlp['overhead_us_median_of_pairs']:.0f}); within the noise |\n"
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
