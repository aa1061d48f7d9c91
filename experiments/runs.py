"""Run directories and the pointer to the latest full run.

Every training run writes into its own directory under a *runs directory* (by default
``runs/mnist/`` in the repository, wherever the command is run from)::

    runs/mnist/
        20261129-141502/        one run: checkpoint.npz, metrics.json, plots
        20261129-143310/
        latest                  a one-line text file: the name of the latest *full* run
        latest-cnn              the same for each model: its latest full run

A run directory is named after the time it started (a ``-2``, ``-3``, ... suffix if that
name is taken). The pointers are rewritten atomically (a temporary file renamed over each)
and only when a full run completes, so a trial run (fewer epochs, ``--limit``) or an
interrupted one never changes which model ``predict.py`` uses by default.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from tinygrad_np.files import remove_stale_temporaries, temporary_path

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = REPOSITORY / "runs" / "mnist"
LATEST = "latest"
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"


class RunError(Exception):
    """A runs directory, run directory or checkpoint path that cannot be used."""


def new_run_directory(runs: Path) -> Path:
    """Create and return a fresh directory in ``runs`` named after the current time."""
    if runs.exists() and not runs.is_dir():
        raise RunError(f"{display(runs)} is a file, not a directory for training runs")
    try:
        runs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            candidate = runs / (stamp if n == 1 else f"{stamp}-{n}")
            with contextlib.suppress(FileExistsError):
                candidate.mkdir()
                return candidate
    except OSError as e:
        raise RunError(f"cannot create a run directory in {display(runs)}: {e.strerror}") from None
    raise RunError(f"{display(runs)}: every name for a run started at {stamp} is taken")


def remove_if_empty(directory: Path) -> None:
    """Remove a run directory nothing was written to (a run stopped before its first epoch)."""
    with contextlib.suppress(OSError):
        directory.rmdir()


def mark_latest(run: Path, model: str) -> None:
    """Make ``run``, a full run of ``model``, the latest full run of its runs directory
    and of that model (each pointer atomically)."""
    for pointer in (run.parent / LATEST, run.parent / f"{LATEST}-{model}"):
        remove_stale_temporaries(pointer, "tmp")
        temporary = temporary_path(pointer, "tmp")
        try:
            temporary.write_text(run.name + "\n")
            os.replace(temporary, pointer)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def latest_run(runs: Path, model: str | None = None) -> Path | None:
    """The run ``runs/latest`` names (``runs/latest-<model>`` for one model), or ``None``
    when no full run (of that model) has completed there."""
    pointer = runs / (LATEST if model is None else f"{LATEST}-{model}")
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunError(f"cannot read {display(pointer)}: {e.strerror}") from None
    if not name or "/" in name or name in (".", ".."):
        raise RunError(f"{display(pointer)} does not name a run directory (it holds {name!r})")
    return runs / name


def preferred_checkpoint(runs: Path, models: Sequence[str]) -> Path:
    """The checkpoint of the latest full run of the first of ``models`` that has one in
    ``runs``; failing all, that of the latest full run (see ``find_checkpoint``)."""
    for model in models:
        run = latest_run(runs, model)
        if run is not None and (run / CHECKPOINT).is_file():
            return run / CHECKPOINT
    return find_checkpoint(runs)


def find_checkpoint(path: Path) -> Path:
    """The checkpoint ``path`` designates: a checkpoint file; a run directory (its
    ``checkpoint.npz``); or a runs directory (the checkpoint of its latest full run)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise RunError(f"checkpoint {display(path)} does not exist")
    if (path / CHECKPOINT).is_file():
        return path / CHECKPOINT
    latest = latest_run(path)
    if latest is not None:
        if not (latest / CHECKPOINT).is_file():
            raise RunError(
                f"{display(path / LATEST)} names {latest.name}, which holds no {CHECKPOINT}"
            )
        return latest / CHECKPOINT
    others = sorted(p.name for p in path.iterdir() if (p / CHECKPOINT).is_file())
    held = f" (it holds trial or unfinished runs: {', '.join(others[-3:])})" if others else ""
    raise RunError(f"no full training run has completed in {display(path)}{held}")


def display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
