"""Where the tinygrad_np contender's time goes, per op, in each configuration.

Every ``Primitive`` found in the loaded ``tinygrad_np`` modules is instrumented for the
duration of the run (the library itself is not modified; the wrappers are removed afterwards):

* forward: the op's NumPy implementation,
* record: its VJP maker (run while recording, builds the backward closures),
* backward: each VJP closure, inclusive of the ops it calls,

and the rest of ``value_and_grad`` (tape bookkeeping, Tensor wrapping, the backward loop,
argument checks, tree handling) is reported as engine overhead. The step's other phases --
gathering the batch and the SGD update -- are timed around the call. The instrumented step is
somewhat slower than a bare one (a few microseconds per op); both times are printed.

    python benchmarks/profile_tg.py [--config a,b,c] [--steps N] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common
from benchmarks.contenders import sgd_
from benchmarks.contenders.tinygrad import make_loss


class OpTimer:
    """Accumulates exclusive-at-top-level time per (phase, op name)."""

    def __init__(self) -> None:
        self.time: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.depth = 0  # > 0 while inside a timed region: nested ops belong to it

    def timed(self, phase: str, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.depth:
                return fn(*args, **kwargs)
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.time[phase, name] += time.perf_counter() - t0
                self.calls[phase, name] += 1
                self.depth -= 1

        return wrapper

    def vjp_maker(self, name: str, maker: Callable[..., Any]) -> Callable[..., Any]:
        timed_maker = self.timed("record", name, maker)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            vjps = timed_maker(*args, **kwargs)
            return tuple(None if f is None else self.timed("backward", name, f) for f in vjps)

        return wrapper


def _primitives() -> list[Any]:
    from tinygrad_np.extend import Primitive

    found: dict[int, Any] = {}
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not (mod_name == "tinygrad_np" or mod_name.startswith("tinygrad_np.")):
            continue
        for value in vars(mod).values():
            if isinstance(value, Primitive):
                found[id(value)] = value
    return list(found.values())


@contextmanager
def instrumented(timer: OpTimer) -> Iterator[None]:
    prims = _primitives()
    saved = [(p, p.impl, p.vjp) for p in prims]
    try:
        for p in prims:
            p.impl = timer.timed("forward", p.name, p.impl)
            p.vjp = timer.vjp_maker(p.name, p.vjp)
        yield
    finally:
        for p, impl, vjp in saved:
            p.impl, p.vjp = impl, vjp


def _schedule(cfg: common.Config, n: int, steps: int) -> list[np.ndarray | None]:
    if cfg.batch is None:
        return [None] * steps
    perm = np.random.default_rng(common.SHUFFLE_SEED).permutation(n)
    return [*common.batch_slices(perm, cfg.batch)[:steps]]


def profile_config(
    cfg: common.Config, data: common.Data, steps: int, use_cprofile: bool
) -> dict[str, Any]:
    import tinygrad_np as tg

    vag = tg.value_and_grad(make_loss())
    params = common.init_params(cfg.dtype)
    x_all, y_all = data.x_train, data.y_train

    def run(schedule: list[np.ndarray | None], phases: dict[str, float] | None) -> float:
        t_start = time.perf_counter()
        for idx in schedule:
            t0 = time.perf_counter()
            x, y = (x_all, y_all) if idx is None else (x_all[idx], y_all[idx])
            t1 = time.perf_counter()
            _, grads = vag(params, x, y)
            t2 = time.perf_counter()
            sgd_(params, grads, common.LR)
            t3 = time.perf_counter()
            if phases is not None:
                phases["gather"] += t1 - t0
                phases["value_and_grad"] += t2 - t1
                phases["sgd update"] += t3 - t2
        return time.perf_counter() - t_start

    schedule = _schedule(cfg, len(y_all), steps)
    run(schedule[: max(1, len(schedule) // 5)], None)  # warm-up
    bare = run(schedule, None) / len(schedule)
    timer, phases = OpTimer(), defaultdict[str, float](float)
    with instrumented(timer):
        total = run(schedule, phases)
    n = len(schedule)
    ops_time = sum(timer.time.values())
    rows = []
    for name in sorted({name for _, name in timer.time}):
        row: dict[str, Any] = {"op": name}
        for phase in ("forward", "record", "backward"):
            row[phase + "_ms"] = 1e3 * timer.time.get((phase, name), 0.0) / n
            row[phase + "_calls"] = timer.calls.get((phase, name), 0) / n
        row["total_ms"] = row["forward_ms"] + row["record_ms"] + row["backward_ms"]
        rows.append(row)
    rows.sort(key=lambda r: -r["total_ms"])
    out: dict[str, Any] = {
        "config": cfg.as_dict(),
        "steps": n,
        "bare_step_ms": 1e3 * bare,
        "instrumented_step_ms": 1e3 * total / n,
        "ops": rows,
        "phases_ms": {
            "gather": 1e3 * phases["gather"] / n,
            "ops (forward+record+backward)": 1e3 * ops_time / n,
            "engine overhead": 1e3 * (phases["value_and_grad"] - ops_time) / n,
            "sgd update": 1e3 * phases["sgd update"] / n,
        },
    }
    if use_cprofile:
        prof = cProfile.Profile()
        prof.runcall(run, schedule, None)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        out["cprofile_top"] = buf.getvalue()
    return out


def table(res: dict[str, Any]) -> str:
    cfg = res["config"]
    step = res["instrumented_step_ms"]
    lines = [
        f"#### config {cfg['key']}: {cfg['description']} -- bare step {res['bare_step_ms']:.2f}"
        f" ms, instrumented {step:.2f} ms ({res['steps']} steps)\n",
        "| op | forward ms | record ms | backward ms | total ms | share of step |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["ops"]:
        lines.append(
            f"| {r['op']} | {r['forward_ms']:.3f} | {r['record_ms']:.3f} | "
            f"{r['backward_ms']:.3f} | {r['total_ms']:.3f} | {100 * r['total_ms'] / step:.1f}% |"
        )
    for phase, ms in res["phases_ms"].items():
        if phase.startswith("ops"):
            continue
        lines.append(f"| *{phase}* | | | | {ms:.3f} | {100 * ms / step:.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="a,b,c")
    ap.add_argument("--steps", type=int, default=None, help="default: 200 (a) / 5 (b, c)")
    ap.add_argument("--data", choices=("mnist", "synthetic"), default="mnist")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--cprofile", action="store_true", help="also print cProfile's top 15")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    results = []
    for key in args.config.split(","):
        cfg = common.CONFIGS[key.strip()]
        data = common.prepare(cfg.dtype, args.data, args.n_train, 10)
        steps = args.steps or (200 if cfg.batch is not None else 5)
        res = profile_config(cfg, data, steps, args.cprofile)
        results.append(res)
        print(table(res))
        if args.cprofile:
            print(res["cprofile_top"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
