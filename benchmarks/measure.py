"""Low-level measurements: CPU time taken by other processes, resident memory, statistics."""

from __future__ import annotations

import os
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
N_CPU = os.cpu_count() or 1


def machine_busy_seconds() -> float:
    """CPU-seconds all CPUs spent not idle since boot (user+nice+system+irq+softirq+steal).

    Steal counts as busy: it is time a hypervisor gave our CPUs to someone else. Guest time is
    already included in user time. Returns NaN where /proc/stat does not exist.
    """
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_cpu_seconds() -> float:
    """CPU-seconds used by this process, all threads, user + system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Sample:
    wall_s: float
    own_cpu_s: float
    other_cpu_s: float
    other_share: float  # CPU used by other processes, as a fraction of the machine's capacity
    own_cores: float  # average number of cores this process kept busy

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def timed(fn: Callable[[], Any]) -> Sample:
    """Run ``fn`` once; wall time plus how much of the machine other processes used meanwhile."""
    b0, c0, t0 = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
    fn()
    t1, c1, b1 = time.perf_counter(), own_cpu_seconds(), machine_busy_seconds()
    wall, own = t1 - t0, c1 - c0
    other = max(0.0, (b1 - b0) - own)  # tick-based /proc/stat vs exact rusage: clamp at 0
    return Sample(wall, own, other, other / (wall * N_CPU), own / wall)


def read_status_kib(key: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM, ...), in KiB; -1 if unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tracemalloc_extra_mib(step: Callable[[], Any]) -> float:
    """Peak memory, in MiB, that one call of ``step`` allocates beyond what was held before
    it, as tracemalloc sees it (NumPy reports its buffers to it), after one traced warm call."""
    tracemalloc.start()
    try:
        step()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        step()
        return (tracemalloc.get_traced_memory()[1] - before) / 2**20
    finally:
        tracemalloc.stop()


def summarize(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }
