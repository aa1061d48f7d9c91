"""Benchmark the MNIST MLP training step across contenders; print a table, write JSON.

    python benchmarks/run.py                      # everything: configs a b c, memory, BLAS
                                                  # thread study, engine micro-benchmark
    python benchmarks/run.py --config a --contenders numpy,tinygrad_np --repeats 7
    python benchmarks/run.py --quick              # fewer repeats, same coverage

Each (contender, configuration, thread setting) runs in a worker process of its own; the
workers take their samples in turn, in an order rotated every round, so that drift on the
machine hits them alike. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, contenders, machine, measure

SCHEMA = "tinygrad_np-benchmarks/1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
BLAS_STUDY_CONTENDERS = ("numpy", "tinygrad_np", "floor", "torch")


@dataclass
class Variant:
    """One contender at one thread setting, in one configuration."""

    contender: str
    threads: int  # 0: library defaults
    proc: subprocess.Popen[str] | None = None
    log: IO[str] | None = None
    status: str = "pending"  # ok | skipped | error
    reason: str = ""
    ready: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.contender if self.threads == 0 else f"{self.contender}@{self.threads}t"


# --------------------------------------------------------------------------- workers


def worker_env(threads: int, mem: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    root = str(common.REPO_ROOT)
    env["PYTHONPATH"] = root + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else root
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        if threads == 1:
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "")
                + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            ).strip()
    if mem:
        # large blocks straight from/to the OS, so RSS follows what is really live
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    return env


def worker_cmd(args: argparse.Namespace, v: Variant, cfg: str, mode: str) -> list[str]:
    cmd = [sys.executable, "-m", "benchmarks.worker", "--mode", mode]
    cmd += ["--contender", v.contender, "--config", cfg, "--data", args.data]
    cmd += ["--iters", str(args.iters), "--threads", str(v.threads)]
    if args.n_train:
        cmd += ["--n-train", str(args.n_train)]
    if args.n_test:
        cmd += ["--n-test", str(args.n_test)]
    return cmd


def _log_tail(log: IO[str] | None, n: int = 2000) -> str:
    if log is None:
        return ""
    log.flush()
    log.seek(0)
    return log.read()[-n:]


def _reply(v: Variant) -> dict[str, Any]:
    """Next protocol message from a worker; an error dict when it died."""
    assert v.proc is not None and v.proc.stdout is not None
    line = v.proc.stdout.readline()
    if not line:  # EOF: the worker has exited
        v.proc.wait()
        return {"error": f"worker exited ({v.proc.returncode}):\n{_log_tail(v.log)}"}
    msg: dict[str, Any] = json.loads(line)
    return msg


def start(args: argparse.Namespace, v: Variant, cfg: str) -> None:
    missing = contenders.missing_requirement(v.contender)
    if missing:
        v.status, v.reason = "skipped", missing
        return
    v.log = tempfile.TemporaryFile("w+")
    v.proc = subprocess.Popen(
        worker_cmd(args, v, cfg, "time"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=v.log,
        text=True,
        cwd=common.REPO_ROOT,
        env=worker_env(v.threads),
    )
    msg = _reply(v)
    if "ready" in msg:
        v.status, v.ready = "ok", msg["ready"]
    else:
        v.status, v.reason = "error", msg.get("error", repr(msg))
        stop(v)


def request_sample(v: Variant) -> None:
    assert v.proc is not None and v.proc.stdin is not None
    v.proc.stdin.write("sample\n")
    v.proc.stdin.flush()
    msg = _reply(v)
    if "sample" in msg:
        v.samples.append(msg["sample"])
    else:
        v.status, v.reason = "error", msg.get("error", repr(msg))
        stop(v)


def stop(v: Variant) -> None:
    if v.proc is not None:
        if v.proc.poll() is None and v.proc.stdin is not None:
            try:
                v.proc.stdin.write("quit\n")
                v.proc.stdin.close()
                v.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                v.proc.kill()
                v.proc.wait()
        v.proc = None
    if v.log is not None:
        v.log.close()
        v.log = None


def measure_memory(args: argparse.Namespace, v: Variant, cfg: str) -> None:
    """Peak extra memory of one step, in a fresh process of its own."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.run(
            worker_cmd(args, v, cfg, "mem"),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=common.REPO_ROOT,
            env=worker_env(v.threads, mem=True),
            timeout=600,
            check=False,
        )
        lines = proc.stdout.strip().splitlines()
        msg = json.loads(lines[-1]) if lines else {"error": _log_tail(log)}
    v.memory = msg.get("memory", {"error": msg.get("error", "no reply")})


# --------------------------------------------------------------------------- one config


def wait_quiet(args: argparse.Namespace, wait: float) -> float:
    """Idle ``--settle`` seconds, then wait (up to ``wait`` s) for other processes to use at
    most ``--max-other`` of the machine over a 0.2 s window; returns the last share seen.
    """
    time.sleep(args.settle)  # also lets the previous worker's BLAS threads stop spinning
    deadline = time.monotonic() + wait
    while True:
        b0, t0 = measure.machine_busy_seconds(), time.perf_counter()
        time.sleep(0.2)
        dt_s = time.perf_counter() - t0
        share = (measure.machine_busy_seconds() - b0) / (dt_s * measure.N_CPU)
        if not share > args.max_other or time.monotonic() >= deadline:
            return share


def is_clean(s: dict[str, Any], max_other: float) -> bool:
    share = s["other_share"]
    return bool(share == share and share <= max_other)  # NaN (no /proc/stat): trust it


def start_hog() -> subprocess.Popen[bytes]:
    """A process that keeps one core busy (pure-Python spin) until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_config(
    args: argparse.Namespace,
    cfg: str,
    names: list[str],
    threads: list[int],
    repeats: int,
    hog: bool = False,
    memory: bool = True,
) -> list[Variant]:
    """Start one worker per (contender, threads), take the samples in rotating rounds.

    With ``hog`` a busy-looping process holds one core throughout the sampling: samples are
    then disturbed by design and none is discarded (``max_other`` is not applied).
    """
    max_other = float("inf") if hog else args.max_other
    variants = [Variant(c, t) for c in names for t in threads]
    for v in variants:
        say(f"[{cfg}] start {v.key} ...")
        start(args, v, cfg)
        if v.status == "ok":
            say(f"[{cfg}]   warm-up {v.ready['warmup_s']:.3f}s, load {v.ready['load_s']:.1f}s")
        else:
            say(f"[{cfg}]   {v.status}: {v.reason.strip().splitlines()[-1]}")
    hog_proc = start_hog() if hog else None
    try:
        live = [v for v in variants if v.status == "ok"]
        rounds = 0
        while live:
            clean_needed = [
                v
                for v in live
                if v.status == "ok" and sum(is_clean(s, max_other) for s in v.samples) < repeats
            ]
            if rounds >= repeats + args.extra_rounds or not clean_needed:
                break
            # the first `repeats` rounds sample everyone; extra rounds only the disturbed ones
            todo = live if rounds < repeats else clean_needed
            shift = rounds % len(todo)
            for v in todo[shift:] + todo[:shift]:
                if v.status != "ok":
                    continue
                quiet = wait_quiet(args, 0.0 if hog else args.wait_quiet)
                request_sample(v)
                if v.samples and v.status == "ok":
                    s = v.samples[-1]
                    s["other_share_before"] = quiet
                    say(
                        f"[{cfg}]   round {rounds + 1} {v.key}: {s['per_unit_s']:.4f}"
                        f" (others {100 * s['other_share']:.0f}%)"
                    )
            rounds += 1
    finally:
        if hog_proc is not None:
            hog_proc.kill()
            hog_proc.wait()
        for v in variants:
            stop(v)
    if memory and args.memory:
        for v in variants:
            if v.status == "ok":
                say(f"[{cfg}] memory {v.key} ...")
                measure_memory(args, v, cfg)
    return variants


def summarize_variant(v: Variant, max_other: float) -> dict[str, Any]:
    out: dict[str, Any] = {"contender": v.contender, "threads": v.threads, "status": v.status}
    if v.reason:
        out["reason"] = v.reason
    if v.status != "ok":
        return out
    clean = [s for s in v.samples if is_clean(s, max_other)]
    used = clean or v.samples
    out.update(
        n_samples=len(v.samples),
        n_discarded=len(v.samples) - len(clean),
        all_disturbed=not clean and bool(v.samples),
        time=measure.summarize([s["per_unit_s"] for s in used]),
        time_all_samples=measure.summarize([s["per_unit_s"] for s in v.samples]),
        other_share=measure.summarize([s["other_share"] for s in used]),
        own_cores=measure.summarize([s["own_cores"] for s in used]),
        samples=v.samples,
        warmup=v.ready,
        memory=v.memory,
    )
    return out


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    for r in results.values():
        base = results.get("numpy" if r["threads"] == 0 else f"numpy@{r['threads']}t")
        if r.get("time") and base and base.get("time"):
            r["ratio_vs_numpy"] = r["time"]["median"] / base["time"]["median"]


# --------------------------------------------------------------------------- output


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fmt_t(x: float) -> str:
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.3f} s"


def table(
    cfg: common.Config, results: dict[str, dict[str, Any]], check_accuracy: bool = False
) -> str:
    head = (
        f"### config {cfg.key}: {cfg.description} ({cfg.unit})\n\n"
        "| contender | median | min - max | vs numpy | used/taken | others' CPU |"
        " own cores | peak extra MiB (tracemalloc) | test acc |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for key, r in results.items():
        if r["status"] != "ok":
            rows.append(f"| {key} | {r['status']}: {r.get('reason', '').strip()[:80]} |||||||| ")
            continue
        t, mem = r["time"], r.get("memory", {})
        extra = mem.get("extra_mib")
        mem_s = "n/a" if extra is None else f"{extra:.1f}"
        if mem.get("tracemalloc_extra_mib") is not None:
            mem_s += f" ({mem['tracemalloc_extra_mib']:.1f})"
        acc = r["warmup"].get("accuracy")
        used = r["n_samples"] - r["n_discarded"] if not r["all_disturbed"] else 0
        rows.append(
            f"| {key} | {_fmt_t(t['median'])} | {_fmt_t(t['min'])} - {_fmt_t(t['max'])}"
            f" | {r.get('ratio_vs_numpy', float('nan')):.2f}x"
            f" | {used}/{r['n_samples']}{' (all disturbed)' if r['all_disturbed'] else ''}"
            f" | {100 * r['other_share']['median']:.0f}%"
            f" | {r['own_cores']['median']:.2f} | {mem_s}"
            f" | {'-' if acc is None else f'{100 * acc:.2f}%'} |"
        )
    text = head + "\n".join(rows) + "\n"
    if cfg.key == "a" and check_accuracy:
        ref = common.REFERENCE_ACCURACY_A
        accs = {k: r["warmup"].get("accuracy") for k, r in results.items() if r["status"] == "ok"}
        off = [k for k, a in accs.items() if a is not None and abs(a - ref) > 5e-4]
        text += (
            f"\nOne-epoch test accuracy check against the reference {100 * ref:.2f}%: "
            + (f"MISMATCH in {', '.join(off)}" if off else "all contenders match")
            + ".\n"
        )
    return text


def save(payload: dict[str, Any], out_dir: Path, tag: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-{tag}" if tag else ""
    text = json.dumps(payload, indent=1, default=str)
    path = out_dir / f"{stamp}{suffix}.json"
    for target in (path, out_dir / f"latest{suffix}.json"):
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="a,b,c", help="comma list of a,b,c (default all)")
    ap.add_argument(
        "--contenders", default=",".join(contenders.ALL), help="comma list (default all)"
    )
    ap.add_argument("--repeats", type=int, default=None, help="timed samples (default 5)")
    ap.add_argument("--quick", action="store_true", help="3 repeats, no extra rounds")
    ap.add_argument("--iters", type=int, default=1, help="full-batch iterations per sample")
    ap.add_argument(
        "--threads",
        default="0",
        help="comma list of BLAS/OpenMP thread counts; 0 = library defaults (default)",
    )
    ap.add_argument(
        "--blas-study",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time config a with 1 and 2 threads (numpy, tinygrad_np, floor, torch)",
    )
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--micro", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument(
        "--max-other",
        type=float,
        default=0.10,
        help="discard samples during which other processes used more than this share of"
        " the machine's CPU (default 0.10)",
    )
    ap.add_argument(
        "--extra-rounds",
        type=int,
        default=None,
        help="extra rounds to replace disturbed samples (default: --repeats; 0 with --quick)",
    )
    ap.add_argument("--settle", type=float, default=0.3, help="idle seconds before each sample")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=5.0,
        help="before each sample, wait up to this many seconds for the machine to be quiet"
        " (others below --max-other); 0 disables",
    )
    ap.add_argument("--data", choices=("mnist", "synthetic"), default="mnist")
    ap.add_argument("--n-train", type=int, default=None, help="use only the first N rows")
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    args = ap.parse_args(argv)
    check_numbers(ap, args)
    try:  # now, not after the benchmark has run for minutes
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        ap.error(f"--out {args.out}: cannot create the results directory ({e.strerror})")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.extra_rounds is None:
        args.extra_rounds = 0 if args.quick else args.repeats
    return args


def check_numbers(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Out-of-range numbers are a usage error (argparse's message and status 2), not a
    traceback minutes later."""
    if not re.fullmatch(r"\d+(,\d+)*", args.threads):
        ap.error(
            f"--threads must be a comma list of counts (0 = library default), got {args.threads!r}"
        )
    for name, low in (
        ("repeats", 1),
        ("iters", 1),
        ("extra_rounds", 0),
        ("n_train", 1),
        ("n_test", 1),
    ):
        value = getattr(args, name)
        if value is not None and value < low:
            ap.error(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    for name in ("settle", "wait_quiet"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= 0):
            ap.error(
                f"--{name.replace('_', '-')} must be a finite number of seconds >= 0, got {value}"
            )
    if not 0 <= args.max_other <= 1:
        ap.error(f"--max-other must lie in [0, 1], got {args.max_other}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    cfgs = [c.strip() for c in args.config.split(",") if c.strip()]
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    threads = [int(t) for t in args.threads.split(",")]
    for c in cfgs:
        if c not in common.CONFIGS:
            raise SystemExit(f"unknown config {c!r}; choose from {', '.join(common.CONFIGS)}")
    for n in names:
        if n not in contenders.ALL:
            raise SystemExit(f"unknown contender {n!r}; choose from {', '.join(contenders.ALL)}")

    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "machine": machine.info(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model": {
            "layers": [common.N_IN, common.N_HIDDEN, common.N_OUT],
            "lr": common.LR,
            "init_seed": common.INIT_SEED,
            "shuffle_seed": common.SHUFFLE_SEED,
            "reference_accuracy_a": common.REFERENCE_ACCURACY_A,
        },
        "configs": {},
    }
    report: list[str] = []
    for c in cfgs:
        cfg = common.CONFIGS[c]
        variants = run_config(args, c, names, threads, args.repeats)
        results = {v.key: summarize_variant(v, args.max_other) for v in variants}
        add_ratios(results)
        payload["configs"][c] = {**cfg.as_dict(), "results": results}
        full_mnist = args.data == "mnist" and not args.n_train and not args.n_test
        report.append(table(cfg, results, check_accuracy=full_mnist))

    if args.blas_study and "a" in cfgs:
        study_names = [n for n in BLAS_STUDY_CONTENDERS if n in names]
        study: dict[str, Any] = {"config": "a", "contenders": study_names}
        for condition, hog in (("quiet", False), ("one_core_busy", True)):
            say(f"[blas threads] {condition}")
            variants = run_config(args, "a", study_names, [1, 2], args.repeats, hog, False)
            max_other = float("inf") if hog else args.max_other
            results = {v.key: summarize_variant(v, max_other) for v in variants}
            add_ratios(results)
            study[condition] = results
        payload["blas_threads"] = study
        report.append(blas_table(study))

    if args.micro:
        from benchmarks import micro

        payload["micro"] = micro.run(quick=args.quick)
        report.append(micro.table(payload["micro"]))

    path = save(payload, args.out, args.tag)
    print("\n".join(report))
    print(f"results: {path}")
    return payload


def blas_table(study: dict[str, Any]) -> str:
    lines = [
        "### BLAS/OpenMP threads at batch 128, float32 (s/epoch, median [min-max])\n",
        "quiet: disturbed samples discarded as above; one core busy: a spinning process holds"
        " one of the cores during every sample.\n",
        "| contender | condition | 1 thread | 2 threads | 1t / 2t |",
        "|---|---|---|---|---|",
    ]
    for name in study["contenders"]:
        for condition in ("quiet", "one_core_busy"):
            results = study[condition]
            one, two = results.get(f"{name}@1t"), results.get(f"{name}@2t")
            if not one or not two or one["status"] != "ok" or two["status"] != "ok":
                continue
            t1, t2 = one["time"], two["time"]
            mark1 = " (all disturbed)" if condition == "quiet" and one["all_disturbed"] else ""
            mark2 = " (all disturbed)" if condition == "quiet" and two["all_disturbed"] else ""
            lines.append(
                f"| {name} | {condition.replace('_', ' ')}"
                f" | {t1['median']:.3f} [{t1['min']:.3f}-{t1['max']:.3f}]{mark1}"
                f" | {t2['median']:.3f} [{t2['min']:.3f}-{t2['max']:.3f}]{mark2}"
                f" | {t1['median'] / t2['median']:.2f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
