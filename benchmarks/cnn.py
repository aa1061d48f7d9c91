"""Benchmark the convolutional network: its layers and its training epoch, against PyTorch.

    python benchmarks/cnn.py                     # layers and epochs, one thread, 5 samples
    python benchmarks/cnn.py --threads 2 --repeats 3
    python benchmarks/cnn.py --steps 50          # quick: samples of 50 training steps

The network is the one ``experiments/cnn.py`` trains (two 5x5 convolutions, each with 2x2
max pooling and ReLU, dense 1024-128-10 with dropout 0.5), float32, batch 128, on MNIST. Each
contender runs in a process of its own with the same number of threads (BLAS and, for
PyTorch, ``torch.set_num_threads``), starts from the same parameters and sees the same
batches; samples are taken in turns, the order rotated every round, and a sample during
which other processes used more than ``--max-other`` of the machine is discarded and
retaken (see benchmarks/README.md: the harness of ``run.py``, reused). The contenders:

* ``tinygrad_np``: ``tg.value_and_grad`` of the cross-entropy of ``experiments.cnn.forward``
  with a dropout key per step, then SGD on the NumPy arrays in place;
* ``tinygrad_np_jit``: the same step (gradient and in-place SGD) under ``tg.jit``, traced
  at the first batch and replayed, its parameters bitwise those of ``tinygrad_np``;
* ``torch``: the same network in PyTorch eager (``F.conv2d``, ``F.max_pool2d``,
  ``F.dropout``, ``torch.addmm``), ``loss.backward()``, SGD under ``no_grad``.

Measured: a conv layer's forward and backward (the gradients of input, weight and bias
from a cotangent) at the network's two layer shapes, one training epoch (469 steps), and
the peak extra memory of one training step in a fresh process. Writes a table to stdout
and JSON to ``benchmarks/results/`` (tag ``cnn``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks import common, machine, measure, worker
from benchmarks import run as harness
from benchmarks.contenders import sgd_

SCHEMA = "tinygrad_np-benchmarks-cnn/1"
CONTENDERS = ("tinygrad_np", "tinygrad_np_jit", "torch")
# The ratio columns of the table: name -> (numerator, denominator).
RATIOS = {
    "tinygrad_np / torch": ("tinygrad_np", "torch"),
    "jit / torch": ("tinygrad_np_jit", "torch"),
    "jit / eager": ("tinygrad_np_jit", "tinygrad_np"),
}
BATCH = 128
LR = 0.05
# (name, input shape, weight shape): the network's two convolutions at batch 128.
LAYERS = (
    ("conv1", (BATCH, 1, 28, 28), (32, 1, 5, 5)),
    ("conv2", (BATCH, 32, 12, 12), (64, 32, 5, 5)),
)
LAYER_CALLS = 10  # calls per layer sample


# --- the contenders ---------------------------------------------------------------------------


def initial_params() -> dict[str, np.ndarray]:
    from experiments import cnn

    return cnn.init_params(np.random.default_rng(common.INIT_SEED))


class TinygradNp:
    numpy_based = True

    def __init__(self, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> None:
        import tinygrad_np as tg
        from experiments import cnn

        self.tg, self.cnn = tg, cnn
        self.x, self.y = x, y
        self.p = {k: v.copy() for k, v in params.items()}
        self.steps = 0
        self.base_key = tg.random.key(0)

        def loss(params: Any, x: Any, y: Any, key: Any) -> Any:
            return tg.nn.cross_entropy(cnn.forward(params, x, key), y)

        self.value_and_grad = tg.value_and_grad(loss)
        self.loss = float("nan")

    def step(self, idx: np.ndarray) -> None:
        key = self.tg.random.fold_in(self.base_key, self.steps)
        self.steps += 1
        loss, grads = self.value_and_grad(self.p, self.x[idx], self.y[idx], key)
        sgd_(self.p, grads, LR)
        self.loss = float(loss)

    def params(self) -> dict[str, np.ndarray]:
        return self.p

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        probabilities = self.cnn.probabilities(self.p, x)
        return float(np.mean(np.argmax(probabilities, axis=1) == y))

    def layer(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[Callable[[], Any], ...]:
        """(forward, backward: the gradients of x, w and b from a fixed cotangent)."""
        tg = self.tg
        y, vjp_fn = tg.vjp(lambda x, w, b: tg.nn.conv2d(x, w, b), x, w, b)
        g = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
        return (lambda: tg.nn.conv2d(x, w, b)), (lambda: vjp_fn(g))

    def describe(self) -> dict[str, str]:
        return {"tinygrad_np": self.tg.__version__}


class TinygradNpJit(TinygradNp):
    """The same step, value_and_grad and the in-place SGD update, under ``tg.jit``: traced at
    the first batch, then replayed (bitwise the eager contender's parameters)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> None:
        super().__init__(x, y, params)
        value_and_grad = self.value_and_grad

        def train_step(params: Any, x: Any, y: Any, key: Any) -> Any:
            loss, grads = value_and_grad(params, x, y, key)
            for k, p in params.items():  # sgd_'s two in-place passes, recorded
                g = grads[k]
                g *= LR
                p -= g
            return loss

        self.train_step = self.tg.jit(train_step)

    def step(self, idx: np.ndarray) -> None:
        key = self.tg.random.fold_in(self.base_key, self.steps)
        self.steps += 1
        self.loss = float(self.train_step(self.p, self.x[idx], self.y[idx], key))


class TorchEager:
    numpy_based = False

    def __init__(self, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> None:
        import torch

        torch.manual_seed(0)
        self.torch, self.f = torch, torch.nn.functional
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.p = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
        self.loss: Any = None

    def forward(self, x: Any, training: bool) -> Any:
        f, p = self.f, self.p
        h = f.relu(f.max_pool2d(f.conv2d(x, p["conv1_w"], p["conv1_b"]), 2))
        h = f.relu(f.max_pool2d(f.conv2d(h, p["conv2_w"], p["conv2_b"]), 2))
        h = f.relu(self.torch.addmm(p["dense1_b"], h.reshape(len(h), -1), p["dense1_w"]))
        h = f.dropout(h, 0.5, training=training)
        return self.torch.addmm(p["dense2_b"], h, p["dense2_w"])

    def step(self, idx: np.ndarray) -> None:
        torch = self.torch
        rows = torch.from_numpy(idx)
        x, y = self.x.index_select(0, rows), self.y.index_select(0, rows)
        loss = self.f.cross_entropy(self.forward(x, training=True), y)
        loss.backward()
        with torch.no_grad():
            for t in self.p.values():
                assert t.grad is not None
                t.sub_(t.grad, alpha=LR)
                t.grad = None
        self.loss = loss.detach()

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.p.items()}

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        predictions = []
        with self.torch.no_grad():
            for i in range(0, len(x), 1000):
                logits = self.forward(self.torch.from_numpy(x[i : i + 1000]), training=False)
                predictions.append(logits.argmax(1).numpy())
        return float(np.mean(np.concatenate(predictions) == y))

    def layer(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[Callable[[], Any], ...]:
        """(forward without recording, backward: the gradients from a fixed cotangent)."""
        torch, f = self.torch, self.f
        xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))

        def forward() -> Any:
            with torch.no_grad():
                return f.conv2d(xt, wt, bt)

        y = f.conv2d(xt, wt, bt)
        g = torch.from_numpy(np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype))
        return forward, lambda: torch.autograd.grad(y, (xt, wt, bt), g, retain_graph=True)

    def describe(self) -> dict[str, str]:
        return {"torch": self.torch.__version__, "torch_threads": str(self.torch.get_num_threads())}


def make(name: str, x: np.ndarray, y: np.ndarray) -> Any:
    cls = {"tinygrad_np": TinygradNp, "tinygrad_np_jit": TinygradNpJit, "torch": TorchEager}[name]
    return cls(x, y, initial_params())


def unavailable(name: str) -> str | None:
    import importlib.util

    if name == "torch" and importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    return None


# --- the worker process -----------------------------------------------------------------------


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        t0 = time.perf_counter()
        data = common.prepare("float32", args.data, args.n_train, args.n_test)
        self.x = data.x_train.reshape(-1, 1, 28, 28)
        self.y = data.y_train
        self.x_test, self.y_test = data.x_test.reshape(-1, 1, 28, 28), data.y_test
        if args.threads and args.contender == "torch":
            import torch

            torch.set_num_threads(args.threads)
        self.contender = make(args.contender, self.x, self.y)
        self.rng = np.random.default_rng(common.SHUFFLE_SEED)
        self.steps = args.steps
        self.load_s = time.perf_counter() - t0
        g = np.random.default_rng(2)
        self.layers = {
            name: self.contender.layer(
                g.standard_normal(x_shape).astype(np.float32),
                (0.1 * g.standard_normal(w_shape)).astype(np.float32),
                np.zeros(w_shape[0], np.float32),
            )
            for name, x_shape, w_shape in LAYERS
        }

    def batches(self) -> list[np.ndarray]:
        perm = self.rng.permutation(len(self.y))
        return common.batch_slices(perm, BATCH)[: self.steps or None]

    def run(self, batches: list[np.ndarray]) -> None:
        for idx in batches:
            self.contender.step(idx)

    def warmup(self) -> dict[str, Any]:
        batches = self.batches()
        t0 = time.perf_counter()
        self.run(batches)
        warm = time.perf_counter() - t0
        for forward, backward in self.layers.values():
            forward(), backward()
        return {
            "load_s": self.load_s,
            "warmup_s": warm,
            "steps": len(batches),
            "accuracy": self.contender.accuracy(self.x_test, self.y_test),
            "last_loss": float(self.contender.loss),
            "describe": self.contender.describe(),
        }

    def epoch_sample(self) -> dict[str, Any]:
        batches = self.batches()
        s = measure.timed(lambda: self.run(batches))
        out: dict[str, Any] = s.as_dict()
        full = -(-len(self.y) // BATCH)
        out["per_unit_s"] = s.wall_s * full / len(batches)  # seconds per epoch
        return out

    def layer_sample(self, name: str, which: int) -> dict[str, Any]:
        call = self.layers[name][which]

        def calls() -> None:
            for _ in range(LAYER_CALLS):
                call()

        s = measure.timed(calls)
        out: dict[str, Any] = s.as_dict()
        out["per_unit_s"] = s.wall_s / LAYER_CALLS
        return out

    def memory(self) -> dict[str, Any]:
        """Peak extra memory of one training step (after three), VmHWM - VmRSS; for the
        NumPy contenders also tracemalloc's peak (NumPy reports its buffers to it) and what
        the first three steps left held (tg.jit's program keeps its arrays between steps)."""
        batches = self.batches()
        if self.contender.numpy_based:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        self.run(batches[:3])
        held = None
        if self.contender.numpy_based:
            held = (tracemalloc.get_traced_memory()[0] - before) / 2**20
            tracemalloc.stop()
        rss = measure.read_status_kib("VmRSS")
        can_reset = measure.reset_peak_rss()
        self.contender.step(batches[0])
        out: dict[str, Any] = {"method": "VmHWM - VmRSS around one step, fresh process"}
        out["extra_mib"] = (measure.read_status_kib("VmHWM") - rss) / 1024 if can_reset else None
        if self.contender.numpy_based:
            step = self.contender.step
            out["tracemalloc_extra_mib"] = measure.tracemalloc_extra_mib(lambda: step(batches[0]))
            out["tracemalloc_held_mib"] = held
        return out


def answer(w: Worker, words: list[str]) -> dict[str, Any] | None:
    """The reply to one command of the runner: ``epoch`` or ``layer NAME CALLS``."""
    if words == ["epoch"]:
        return {"sample": w.epoch_sample()}
    if len(words) == 3 and words[0] == "layer":
        return {"sample": w.layer_sample(words[1], int(words[2]))}
    return None


# --- the runner -------------------------------------------------------------------------------


class Contender:
    def __init__(self, name: str) -> None:
        self.name = name
        self.proc: subprocess.Popen[str] | None = None
        self.log: IO[str] | None = None
        self.status, self.reason = "pending", ""
        self.ready: dict[str, Any] = {}
        self.samples: dict[str, list[dict[str, Any]]] = {}
        self.memory: dict[str, Any] = {}

    def command(self, args: argparse.Namespace, mode: str) -> list[str]:
        cmd = [sys.executable, "-m", "benchmarks.cnn", "--worker", "--mode", mode]
        cmd += ["--contender", self.name, "--threads", str(args.threads), "--data", args.data]
        cmd += ["--steps", str(args.steps)]
        for option in ("n_train", "n_test"):
            if getattr(args, option):
                cmd += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        return cmd

    def start(self, args: argparse.Namespace) -> None:
        missing = unavailable(self.name)
        if missing:
            self.status, self.reason = "skipped", missing
            return
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            self.command(args, "time"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=common.REPO_ROOT,
            env=harness.worker_env(args.threads),
        )
        reply = self.ask(None)
        if "ready" in reply:
            self.status, self.ready = "ok", reply["ready"]
        else:
            self.fail(reply)

    def ask(self, command: str | None) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        assert self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = ""
            if self.log is not None:
                self.log.seek(0)
                tail = self.log.read()[-2000:]
            return {"error": f"worker exited ({self.proc.returncode}):\n{tail}"}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def fail(self, reply: dict[str, Any]) -> None:
        self.status, self.reason = "error", str(reply.get("error", reply))
        self.stop()

    def sample(self, what: str, command: str) -> None:
        reply = self.ask(command)
        if "sample" in reply:
            self.samples.setdefault(what, []).append(reply["sample"])
        else:
            self.fail(reply)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None and self.proc.stdin is not None:
                try:
                    self.proc.stdin.write("quit\n")
                    self.proc.stdin.close()
                    self.proc.wait(timeout=60)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def measure_memory(self, args: argparse.Namespace) -> None:
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.run(
                self.command(args, "mem"),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=common.REPO_ROOT,
                env=harness.worker_env(args.threads, mem=True),
                timeout=900,
                check=False,
            )
            lines = proc.stdout.strip().splitlines()
            reply = json.loads(lines[-1]) if lines else {"error": "no reply"}
        self.memory = reply.get("memory", {"error": reply.get("error", "no reply")})


def measurements() -> list[tuple[str, str]]:
    """(name, worker command) of every kind of sample."""
    out = [("epoch", "epoch")]
    for name, _, _ in LAYERS:
        out += [(f"{name} forward", f"layer {name} 0"), (f"{name} backward", f"layer {name} 1")]
    return out


def sample_all(args: argparse.Namespace, contenders: list[Contender]) -> None:
    """Rounds of one sample of every kind per contender, order rotated every round, until
    each has ``--repeats`` clean samples of each kind (at most ``--extra-rounds`` more)."""
    kinds = measurements()
    for round_number in range(args.repeats + args.extra_rounds):
        live = [c for c in contenders if c.status == "ok"]
        needed = [
            (c, what, command)
            for c in live
            for what, command in kinds
            if round_number < args.repeats
            or sum(harness.is_clean(s, args.max_other) for s in c.samples.get(what, []))
            < args.repeats
        ]
        if not needed:
            return
        shift = round_number % max(1, len(live))
        order = live[shift:] + live[:shift]
        for what, command in kinds:
            for c in order:
                if (c, what, command) in needed and c.status == "ok":
                    quiet = harness.wait_quiet(args, args.wait_quiet)
                    c.sample(what, command)
                    if c.status == "ok":
                        s = c.samples[what][-1]
                        s["other_share_before"] = quiet
                        harness.say(
                            f"  round {round_number + 1} {c.name} {what}: "
                            f"{s['per_unit_s']:.4f} s (others {100 * s['other_share']:.0f}%)"
                        )


def summarize(c: Contender, max_other: float) -> dict[str, Any]:
    out: dict[str, Any] = {"contender": c.name, "status": c.status}
    if c.reason:
        out["reason"] = c.reason
    if c.status != "ok":
        return out
    out.update(warmup=c.ready, memory=c.memory, measurements={})
    for what, samples in c.samples.items():
        clean = [s for s in samples if harness.is_clean(s, max_other)]
        used = clean or samples
        out["measurements"][what] = {
            "n_samples": len(samples),
            "n_discarded": len(samples) - len(clean),
            "all_disturbed": not clean,
            "time": measure.summarize([s["per_unit_s"] for s in used]),
            "own_cores": measure.summarize([s["own_cores"] for s in used]),
            "other_share": measure.summarize([s["other_share"] for s in used]),
            "samples": samples,
        }
    return out


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(results: dict[str, dict[str, Any]], steps: int) -> str:
    unit = "s/epoch" if not steps else f"s/epoch, from samples of {steps} steps"
    lines = [
        f"### CNN, batch {BATCH}, float32 (epoch: {unit}; layers: per call)\n",
        "| measurement | " + " | ".join(results) + " | " + " | ".join(RATIOS) + " |",
        "|---|" + "---|" * (len(results) + len(RATIOS)),
    ]
    for what, _ in measurements():
        cells, medians = [], {}
        for name, r in results.items():
            m = r.get("measurements", {}).get(what)
            if not m or not m["time"]:
                cells.append(r.get("status", "-"))
                continue
            t = m["time"]
            medians[name] = t["median"]
            used = m["n_samples"] - m["n_discarded"] if not m["all_disturbed"] else 0
            cells.append(
                f"{_fmt(t['median'])} ({_fmt(t['min'])}-{_fmt(t['max'])}), "
                f"{used}/{m['n_samples']} clean"
            )
        for a, b in RATIOS.values():
            cells.append(f"{medians[a] / medians[b]:.2f}x" if {a, b} <= set(medians) else "-")
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    memory = []
    for r in results.values():
        mem = r.get("memory", {})
        extra = mem.get("extra_mib")
        text = "n/a" if extra is None else f"{extra:.0f}"
        if mem.get("tracemalloc_extra_mib") is not None:
            text += f" ({mem['tracemalloc_extra_mib']:.0f}"
            held = mem.get("tracemalloc_held_mib")
            text += ")" if held is None or held < 1 else f", {held:.0f} held between steps)"
        memory.append(text)
    gaps = " |" * len(RATIOS)
    lines.append("| peak extra MiB of a step (tracemalloc) | " + " | ".join(memory) + f" |{gaps}")
    accuracy = [
        f"{100 * r['warmup']['accuracy']:.2f}%" if r.get("warmup") else "-"
        for r in results.values()
    ]
    lines.append("| test accuracy after the warm-up epoch | " + " | ".join(accuracy) + f" |{gaps}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=("time", "mem"), default="time", help=argparse.SUPPRESS)
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--contenders", default=",".join(CONTENDERS), help="comma list")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/torch threads (default 1)")
    ap.add_argument("--repeats", type=int, default=5, help="clean samples of each (default 5)")
    ap.add_argument("--extra-rounds", type=int, default=None, help="default: --repeats")
    ap.add_argument("--steps", type=int, default=0, help="steps per epoch sample (0: 469)")
    ap.add_argument("--max-other", type=float, default=0.10)
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--wait-quiet", type=float, default=5.0)
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--data", choices=("mnist", "synthetic"), default="mnist")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--out", type=Path, default=harness.RESULTS_DIR)
    ap.add_argument("--tag", default="cnn")
    args = ap.parse_args(argv)
    if args.extra_rounds is None:
        args.extra_rounds = args.repeats
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        proto = os.fdopen(os.dup(1), "w")  # the protocol keeps stdout; prints go to stderr
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        worker.serve(lambda: Worker(args), args.mode == "mem", proto, answer)
        return {}
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    for n in names:
        if n not in CONTENDERS:
            raise SystemExit(f"unknown contender {n!r}; choose from {', '.join(CONTENDERS)}")
    contenders = [Contender(n) for n in names]
    try:
        for c in contenders:
            harness.say(f"start {c.name} (warm-up: one epoch) ...")
            c.start(args)
            harness.say(f"  {c.status} {c.reason.strip().splitlines()[-1] if c.reason else ''}")
        sample_all(args, contenders)
    finally:
        for c in contenders:
            c.stop()
    if args.memory:
        for c in contenders:
            if c.status == "ok":
                harness.say(f"memory {c.name} ...")
                c.measure_memory(args)
    results = {c.name: summarize(c, args.max_other) for c in contenders}
    payload = {
        "schema": SCHEMA,
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "machine": machine.info(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "network": "experiments/cnn.py, batch 128, float32, SGD lr 0.05",
        "layers": [{"name": n, "x": x, "w": w} for n, x, w in LAYERS],
        "results": results,
    }
    path = harness.save(payload, args.out, args.tag)
    print(table(results, args.steps))
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
