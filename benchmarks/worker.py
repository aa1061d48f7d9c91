"""One contender in one configuration, in a process of its own.

Started by ``run.py`` as ``python -m benchmarks.worker ...``; speaks JSON lines on stdout (the
real stdout is kept for the protocol, anything else printed goes to stderr).

``--mode time``: load, warm up (one untimed epoch or iteration, from the initial parameters and
the first permutation of ``default_rng(1)``), report the test accuracy, then answer ``sample``
requests with one timed sample each until ``quit``. Training continues across samples (epoch k
uses the k-th permutation), as it would in real training.

``--mode mem``: fresh process, report the peak extra memory of one step and exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from benchmarks import common, measure
from benchmarks.contenders import Contender, get


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        cfg = common.CONFIGS[args.config]
        self.cfg = cfg
        self.iters = args.iters
        t0 = time.perf_counter()
        self.data = common.prepare(cfg.dtype, args.data, args.n_train, args.n_test)
        self.rng = np.random.default_rng(common.SHUFFLE_SEED)
        if args.threads and args.contender == "torch":
            import torch

            torch.set_num_threads(args.threads)
        cls = get(args.contender)
        self.contender: Contender = cls(
            self.data.x_train, self.data.y_train, common.init_params(cfg.dtype), common.LR
        )
        self.load_s = time.perf_counter() - t0

    def batches(self) -> list[np.ndarray | None]:
        """The work of one sample: an epoch's batches in the next permutation, or full steps."""
        if self.cfg.batch is None:
            return [None] * self.iters
        perm = self.rng.permutation(len(self.data.y_train))
        return list(common.batch_slices(perm, self.cfg.batch))

    def run(self, batches: list[np.ndarray | None]) -> None:
        step = self.contender.step
        for idx in batches:
            step(idx)
        self.contender.sync()

    def warmup(self) -> dict[str, Any]:
        batches = self.batches()
        t0 = time.perf_counter()
        self.run(batches)
        warm = time.perf_counter() - t0
        out: dict[str, Any] = {"load_s": self.load_s, "warmup_s": warm, "steps": len(batches)}
        if self.contender.trains:
            acc, test_loss = common.evaluate(
                self.contender.params(), self.data.x_test, self.data.y_test
            )
            out.update(accuracy=acc, test_loss=test_loss, last_loss=self.contender.last_loss())
        out["describe"] = self.contender.describe()
        return out

    def sample(self) -> dict[str, Any]:
        batches = self.batches()
        s = measure.timed(lambda: self.run(batches))
        out: dict[str, Any] = s.as_dict()
        out["per_unit_s"] = s.wall_s / (1 if self.cfg.batch is not None else len(batches))
        return out

    def memory(self) -> dict[str, Any]:
        """Peak extra resident memory of one step, cold (first step) and warm (a later one).

        VmHWM is reset through /proc/self/clear_refs just before the step and read right after;
        the parent starts this process with MALLOC_MMAP_THRESHOLD_ set so that large temporaries
        are returned to the OS when freed and the RSS baseline is not inflated by cached blocks.
        NumPy-based contenders also report tracemalloc's peak (NumPy reports its buffers to it).
        """
        batches = self.batches()
        first = batches[0]
        c = self.contender
        out: dict[str, Any] = {"method": "VmHWM - VmRSS around one step, fresh process"}
        rss0 = measure.read_status_kib("VmRSS")
        out["baseline_rss_mib"] = rss0 / 1024
        can_reset = measure.reset_peak_rss()
        c.step(first)
        c.sync()
        out["cold_extra_mib"] = (measure.read_status_kib("VmHWM") - rss0) / 1024
        for idx in batches[1:3] or [first, first]:
            c.step(idx)
        c.sync()
        rss1 = measure.read_status_kib("VmRSS")
        measure.reset_peak_rss()
        c.step(first)
        c.sync()
        out["extra_mib"] = (measure.read_status_kib("VmHWM") - rss1) / 1024 if can_reset else None
        if c.numpy_based:
            out["tracemalloc_extra_mib"] = measure.tracemalloc_extra_mib(lambda: c.step(first))
        return out


def serve(
    make_worker: Callable[[], Any],
    memory_only: bool,
    proto: IO[str],
    answer: Callable[[Any, list[str]], dict[str, Any] | None],
) -> None:
    """A worker's side of the protocol: one JSON line per message on ``proto``. Sends the
    worker's memory and stops, or its warm-up result and then answers each command line of
    stdin with ``answer(worker, words)`` (None: unknown) until ``quit``. A failure to start
    is sent as its traceback, for the runner to show."""

    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        w = make_worker()
        if memory_only:
            send({"memory": w.memory()})
            return
        send({"ready": w.warmup()})
    except Exception:
        send({"error": traceback.format_exc()})
        return
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            return
        reply = answer(w, words)
        send(reply if reply is not None else {"error": f"unknown command {line.strip()!r}"})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=("time", "mem"), default="time")
    ap.add_argument("--contender", required=True)
    ap.add_argument("--config", choices=tuple(common.CONFIGS), required=True)
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--iters", type=int, default=1, help="full-batch iterations per sample")
    ap.add_argument("--threads", type=int, default=0, help="0: library defaults")
    args = ap.parse_args(argv)
    # keep the real stdout for the protocol; route every other print to stderr
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(
        lambda: Worker(args),
        args.mode == "mem",
        proto,
        lambda w, words: {"sample": w.sample()} if words == ["sample"] else None,
    )


if __name__ == "__main__":
    main()
