"""What machine and software a result was measured on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from typing import Any

import numpy as np

from benchmarks.common import REPO_ROOT

THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")


def _cpu_model() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", list[str]()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("unknown", "", "x86_64"):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value.split()
    except OSError:
        pass
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
    return model, [f for f in wanted if f in flags]


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _numpy_blas() -> dict[str, Any]:
    try:
        cfg: Any = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception as e:  # show_config's layout is not a stable API
        return {"error": repr(e)}


def _threadpools() -> list[dict[str, Any]] | str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    keys = ("user_api", "internal_api", "num_threads", "version", "architecture")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("numpy", "torch", "jax", "jaxlib", "autograd", "threadpoolctl"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def info() -> dict[str, Any]:
    model, flags = _cpu_model()
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return {
        "cpu_model": model,
        "cpu_flags": flags,
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "mem_total_gib": _mem_total_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": _versions(),
        "numpy_blas": _numpy_blas(),
        "threadpools": _threadpools(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},
        "loadavg_at_start": os.getloadavg(),
        "git_commit": _git("rev-parse", "HEAD"),
        "tinygrad_np_dirty": bool(_git("status", "--porcelain", "--", "tinygrad_np")),
    }
