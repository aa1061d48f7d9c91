"""Train a model on MNIST (by default the 784-128-10 MLP): the default recipe.

Mini-batches of 128 randomly shifted digits, Adam with an exponentially decaying learning
rate, float32, a fixed seed. Every run writes into a directory of its own under ``--out``
(default ``runs/mnist/`` in the repository, wherever the command runs from; see
``experiments/runs.py``):

* ``checkpoint.npz``: parameters, optimizer state, RNG state and history, saved after
  every epoch (``--resume`` continues from it exactly where it stopped);
* ``metrics.json``: per-epoch loss and accuracy, wall time, versions, the config;
* PNG plots: training curves, confusion matrix, predictions, the most confidently wrong
  test digits, and the model's own (the MLP's first-layer weights).

A *full* run (the whole training set for at least the recipe's number of epochs) becomes
the latest model when it completes: ``runs/mnist/latest`` names it, and ``predict.py`` uses
it. A trial run (``--limit``, fewer epochs) or an interrupted one never replaces it.

    python experiments/train.py                           # the full recipe
    python experiments/train.py --limit 2000 --epochs 1   # a quick trial
    python experiments/train.py --resume runs/mnist/20261129-141502/checkpoint.npz
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if __name__ == "__main__":
    # A mini-batch's matrix products (128 x 784 x 128) are too small to gain from BLAS
    # threads, and on a busy 2-core machine the threads' spinning made epochs 5x slower.
    # One thread, unless the environment asks for more (this must precede importing numpy).
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import numpy as np
from tqdm import tqdm

import tinygrad_np as tg
from experiments import plots, registry, runs
from experiments.runs import CHECKPOINT, METRICS, RunError, display
from tinygrad_np import checkpoint, optim
from tinygrad_np.datasets import DatasetError, fashion_mnist, mnist

# The recipe: Adam whose learning rate decays smoothly by lr_decay per epoch, and training
# digits moved at random by up to max_shift pixels, which keeps the small network from
# memorising them. Chosen without looking at the test set: trained on the first 50000
# training digits, four seeds reached 98.26-98.50% on the other 10000 (without the shifts,
# five learning-rate schedules reached 97.4-97.7%; shifts of up to 2 pixels, about 97.8%).
# A model module may override any of it (its RECIPE).
DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "batch_size": 128,
    "lr": 3e-3,
    "lr_decay": 0.85,
    "lr_schedule": "exponential",
    "cosine_epochs": None,
    "max_shift": 1,
    "max_rotation": 0,
    "max_scale": 0,
    "seed": 0,
    "limit": None,
    "dataset": "mnist",
}
# The same 28x28 greyscale images in ten classes: digits, or Fashion-MNIST's clothing.
DATASETS = {"mnist": mnist, "fashion-mnist": fashion_mnist}
# The recipe's command-line options.
OPTIONS = ("epochs", "batch_size", "lr", "seed", "limit", "dataset")
# These define the optimisation; a resumed run must keep them (only --epochs may change).
RECIPE_KEYS = (
    "model", "batch_size", "lr", "lr_decay", "lr_schedule", "cosine_epochs", "max_shift",
    "max_rotation", "max_scale", "seed", "limit", "dataset",
)  # fmt: skip
TRAINING_DIGITS = 60_000
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130  # argparse's status for bad arguments; 128 + SIGINT


class UsageError(Exception):
    """A command line that cannot be carried out; the message says why."""


class Interrupted(Exception):
    """Ctrl-C stopped the run; the message says where and how to continue."""


def loss_and_logits(
    params: Any, x: Any, labels: Any, net: ModuleType, key: Any = None
) -> tuple[Any, Any]:
    logits = net.forward(params, x) if key is None else net.forward(params, x, key)
    return tg.nn.cross_entropy(logits, labels), logits


loss_and_grads = tg.value_and_grad(loss_and_logits, has_aux=True)


def make_train_step(net: ModuleType, opt: optim.GradientTransformation, jit: bool = True) -> Any:
    """One optimisation step on a batch, ``(params, opt_state, x, labels, key) -> (params,
    opt_state, loss, logits)``: the gradient, the optimizer's update and its application.

    For a model that declares ``JIT = True`` it runs under ``tg.jit``: traced at the first
    batch of each shape, then replayed, with results bitwise those of the eager step (so a
    run gives the same numbers either way, only faster); ``jit=False`` runs it eagerly.
    """

    def train_step(params: Any, opt_state: Any, x: Any, labels: Any, key: Any) -> Any:
        (loss, logits), grads = loss_and_grads(params, x, labels, net, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss, logits

    return tg.jit(train_step) if jit and getattr(net, "JIT", False) else train_step


def make_optimizer(config: dict[str, Any], steps_per_epoch: int) -> optim.GradientTransformation:
    """Adam whose learning rate decays by ``lr_decay`` per epoch (``lr_schedule``
    "exponential", the default and the only one of runs that predate the key), or along half
    a cosine to 0 at the end of epoch ``cosine_epochs`` ("cosine"; 0 after it). The cosine's
    length is part of the recipe, not ``--epochs``, so that a run resumed with more epochs
    continues the schedule it started with."""
    if config.get("lr_schedule", "exponential") == "cosine":
        total_steps = steps_per_epoch * config["cosine_epochs"]
        schedule = optim.cosine_decay_schedule(config["lr"], total_steps)
    else:
        schedule = optim.exponential_decay(config["lr"], steps_per_epoch, config["lr_decay"])
    return optim.adam(schedule)


def recipe(model: str) -> dict[str, Any]:
    """The default config of ``model``: train.py's defaults updated by the model's RECIPE."""
    return {**DEFAULTS, **getattr(registry.get(model), "RECIPE", {}), "model": model}


def is_full_run(config: dict[str, Any]) -> bool:
    """Whether a run with this config, once complete, is a full run of its model's recipe."""
    return config["limit"] is None and config["epochs"] >= recipe(config["model"])["epochs"]


def evaluate(params: Any, net: ModuleType, images: Any, labels: Any) -> tuple[float, float, Any]:
    """Mean loss, accuracy and class probabilities on a whole data set."""
    probabilities = net.probabilities(params, net.inputs(images))
    true_class = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.maximum(true_class, np.finfo(true_class.dtype).tiny))))
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels))
    return loss, accuracy, probabilities


def random_shifts(images: Any, max_shift: int, rng: np.random.Generator) -> Any:
    """Each image of ``images`` (N, 28, 28) moved by up to ``max_shift`` pixels along each
    axis (independently per image), the uncovered border left blank."""
    n, height, width = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    top, left = rng.integers(0, 2 * max_shift + 1, size=(2, n, 1))
    rows = (top + np.arange(height))[:, :, None]
    cols = (left + np.arange(width))[:, None, :]
    return padded[np.arange(n)[:, None, None], rows, cols]


def random_affine(
    images: Any, max_shift: float, max_rotation: float, max_scale: float, rng: np.random.Generator
) -> Any:
    """Each image of ``images`` (N, H, W) rotated about its centre by up to ``max_rotation``
    degrees, scaled by a factor within ``1 +- max_scale`` and moved by up to ``max_shift``
    pixels along each axis, all drawn uniformly and independently per image; the pixels
    are interpolated bilinearly, and what comes from outside the frame is blank."""
    n, height, width = images.shape
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))
    scale = rng.uniform(1 - max_scale, 1 + max_scale, n)
    shift_rows, shift_cols = rng.uniform(-max_shift, max_shift, (2, n, 1, 1))
    # Output pixel p reads the input at centre + rotation(-angle) (p - centre - shift) / scale:
    # the input's centre lands at centre + shift.
    cos, sin = (np.cos(angle) / scale)[:, None, None], (np.sin(angle) / scale)[:, None, None]
    r = (np.arange(height) - (height - 1) / 2)[None, :, None] - shift_rows
    c = (np.arange(width) - (width - 1) / 2)[None, None, :] - shift_cols
    rows = (height - 1) / 2 + cos * r - sin * c
    cols = (width - 1) / 2 + sin * r + cos * c
    # Blank borders: one row and column of zeros before the image, two after, and sources
    # clipped to [-1, size], so that both neighbours of every source lie in the padding
    # or the image.
    padded = np.pad(images, ((0, 0), (1, 2), (1, 2))).reshape(n, -1)
    rows, cols = np.clip(rows, -1, height), np.clip(cols, -1, width)
    top, left = np.floor(rows), np.floor(cols)
    down, right = (rows - top).astype(images.dtype), (cols - left).astype(images.dtype)
    index = (top.astype(np.intp) + 1) * (width + 3) + left.astype(np.intp) + 1
    at = np.arange(n)[:, None, None]
    return (padded[at, index] * (1 - right) + padded[at, index + 1] * right) * (1 - down) + (
        padded[at, index + width + 3] * (1 - right) + padded[at, index + width + 4] * right
    ) * down


def train_epoch(
    params: Any,
    opt_state: Any,
    step: Any,
    net: ModuleType,
    images: Any,
    labels: Any,
    config: dict[str, Any],
    rng: np.random.Generator,
    description: str,
) -> tuple[Any, Any, float, float]:
    """One pass over shuffled, randomly shifted mini-batches, each a call of ``step`` (see
    :func:`make_train_step`); returns the running mean loss and accuracy."""
    order = rng.permutation(len(images))
    batch_size, max_shift = config["batch_size"], config["max_shift"]
    max_rotation, max_scale = config.get("max_rotation", 0), config.get("max_scale", 0)
    training_keys = getattr(net, "TRAINING_KEYS", False)
    total_loss = total_correct = 0.0
    seen = 0
    batches = range(0, len(images), batch_size)
    # A progress bar on a terminal only (disable=None): in a log it would be a line per update.
    with tqdm(batches, desc=description, unit="batch", leave=False, disable=None) as bar:
        for start in bar:
            batch = order[start : start + batch_size]
            if max_rotation or max_scale:
                digits = random_affine(images[batch], max_shift, max_rotation, max_scale, rng)
            elif max_shift:
                digits = random_shifts(images[batch], max_shift, rng)
            else:
                digits = images[batch]
            key = tg.random.key(int(rng.integers(2**63))) if training_keys else None
            params, opt_state, loss, logits = step(
                params, opt_state, net.inputs(digits), labels[batch], key
            )
            total_loss += float(loss) * len(batch)
            total_correct += int(np.sum(np.argmax(logits, axis=1) == labels[batch]))
            seen += len(batch)
            bar.set_postfix(
                loss=f"{total_loss / seen:.4f}",
                acc=f"{total_correct / seen:.2%}",
                refresh=False,  # redrawn at tqdm's own pace, not once per batch
            )
    return params, opt_state, total_loss / seen, total_correct / seen


# --- the command line ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's usage error, without exiting the tests
        raise UsageError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python experiments/train.py",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--model",
        choices=sorted(registry.MODELS),
        help=f"the model to train (default {registry.DEFAULT_MODEL})",
    )
    parser.add_argument("--epochs", type=int, help=f"total epochs (default {DEFAULTS['epochs']})")
    parser.add_argument("--batch-size", type=int, help=f"default {DEFAULTS['batch_size']}")
    parser.add_argument("--lr", type=float, help=f"initial Adam learning rate ({DEFAULTS['lr']})")
    parser.add_argument("--seed", type=int, help=f"default {DEFAULTS['seed']}")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"runs directory; each run gets a directory in it (default {runs.DEFAULT_RUNS})",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="PATH",
        help="continue the run of this checkpoint (or run directory), in its directory",
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="use only the first N training and test digits"
    )
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        help="train and test on MNIST (default) or Fashion-MNIST; a run's default runs "
        "directory is runs/<dataset>",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="run the training step eagerly, not traced with tg.jit (the same numbers, slower)",
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "limit", "seed"):
        value, low = getattr(args, name), 0 if name == "seed" else 1
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    if args.seed is not None and args.seed >= 2**63:
        parser.error(f"--seed must be below 2**63, got {args.seed}")
    if args.limit is not None and args.limit > TRAINING_DIGITS:
        parser.error(
            f"--limit must be at most {TRAINING_DIGITS} (the training set), got {args.limit}"
        )
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive finite number, got {args.lr}")
    if args.resume is not None and args.out is not None:
        parser.error(
            "--out cannot be combined with --resume: a resumed run continues in its own directory"
        )
    return args


def resolve_config(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The run's config: the model's recipe, or a resumed run's own config, updated from the
    command line."""
    given = {key: getattr(args, key) for key in OPTIONS if getattr(args, key) is not None}
    if args.model is not None:
        given["model"] = args.model
    if saved is None:
        return {**recipe(given.get("model", registry.DEFAULT_MODEL)), **given}
    for key, value in given.items():
        if key in RECIPE_KEYS and value != saved[key]:
            raise UsageError(
                f"--{key.replace('_', '-')} {value} differs from the checkpoint's {saved[key]}: "
                "a resumed run keeps its recipe (only --epochs may change)"
            )
    return {**saved, **given}


def load_training_state(path: Path) -> tuple[Path, checkpoint.Checkpoint]:
    """The checkpoint ``path`` designates, written by this script: its file and contents."""
    try:
        file = runs.find_checkpoint(path)
        metadata = checkpoint.load(file).metadata
        config = metadata.get("config")
        model = config.get("model", "mlp") if isinstance(config, dict) else None
        if model is None or not {"rng_state", "history"} <= set(metadata):
            raise UsageError(
                f"cannot resume: checkpoint {display(file)} was not written by train.py (its "
                "metadata lacks the config, RNG state or history it needs to continue)"
            )
        template = registry.get(model).zeros_params(np.float32)
        saved = checkpoint.load(file, template, optim.adam(1.0).init(template))
    except (RunError, checkpoint.CheckpointError, registry.UnknownModelError) as e:
        raise UsageError(f"cannot resume: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot resume from {display(path)}: {e.strerror or e}") from None
    saved.metadata["config"].setdefault("model", "mlp")  # written before models had names
    saved.metadata["config"].setdefault("dataset", "mnist")  # and before there was a choice
    for key in ("max_rotation", "max_scale"):  # and before rotations and scalings
        saved.metadata["config"].setdefault(key, 0)
    return file, saved


def load_data(limit: int | None, dataset: str = "mnist") -> tuple[Any, Any, Any, Any]:
    """Training and test images (float32 in [0, 1], (N, 28, 28)) and labels (int64), the
    first ``limit`` of each."""
    try:
        x_train, y_train, x_test, y_test = DATASETS[dataset]()
    except (DatasetError, OSError) as e:
        raise UsageError(f"cannot read {dataset}: {e}") from None
    return (
        x_train[:limit].astype(np.float32) / 255,
        y_train[:limit].astype(np.int64),
        x_test[:limit].astype(np.float32) / 255,
        y_test[:limit].astype(np.int64),
    )


def write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)


@dataclass
class Progress:
    """Where a run is, for the message of an interrupt."""

    run: Path | None = None
    epoch: int = 0  # the epoch being trained, or last trained (0: none yet)
    finished: bool = False  # all epochs trained
    epochs: int = 0
    checkpoint: Path | None = None  # the last checkpoint written (or resumed from)
    checkpoint_epoch: int = 0
    no_plots: bool = False
    fresh_run: bool = True


@dataclass
class Result:
    """What a completed run produced."""

    run: Path
    metrics: dict[str, Any]
    full_run: bool
    became_latest: bool


def run_training(argv: list[str] | None = None, progress: Progress | None = None) -> Result:
    """Parse ``argv`` and train; raises ``UsageError`` for a command line that cannot be
    carried out and ``Interrupted`` on Ctrl-C (each with the message to print)."""
    progress = Progress() if progress is None else progress
    try:
        return _run(argv, progress)
    except KeyboardInterrupt:
        raise Interrupted(interrupt_message(progress)) from None
    finally:
        if progress.run is not None and progress.fresh_run and progress.checkpoint is None:
            runs.remove_if_empty(progress.run)  # stopped before writing anything


def _run(argv: list[str] | None, progress: Progress) -> Result:
    args = parse_args(argv)
    progress.no_plots = args.no_plots
    resumed = None
    if args.resume is not None:
        progress.checkpoint, resumed = load_training_state(args.resume)
        progress.fresh_run = False
    config = resolve_config(args, None if resumed is None else resumed.metadata["config"])
    net = registry.get(config["model"])
    if resumed is None:
        try:
            default = runs.DEFAULT_RUNS.with_name(config["dataset"])  # runs/mnist by default
            run = runs.new_run_directory(default if args.out is None else args.out)
        except RunError as e:
            raise UsageError(str(e)) from None
        rng = np.random.default_rng(config["seed"])
        params = net.init_params(rng)
        history: list[dict[str, Any]] = []
    else:  # continue the parameters, the optimizer and the random stream where they stopped
        assert progress.checkpoint is not None
        run = progress.checkpoint.parent
        params = resumed.params
        rng = np.random.default_rng()
        rng.bit_generator.state = resumed.metadata["rng_state"]
        history = resumed.metadata["history"]
        progress.epoch = progress.checkpoint_epoch = len(history)
        if len(history) > config["epochs"]:
            raise UsageError(
                f"--epochs {config['epochs']} is fewer than the {len(history)} epochs "
                f"the checkpoint {display(progress.checkpoint)} has already trained"
            )
        if len(history) == config["epochs"]:
            raise UsageError(
                f"the checkpoint {display(progress.checkpoint)} has already trained its "
                f"{config['epochs']} epochs: give a larger --epochs to train on"
            )
        print(f"Resuming {display(run)} after epoch {len(history)}")
    progress.run, progress.epochs = run, config["epochs"]

    train_images, train_labels, test_images, test_labels = load_data(
        config["limit"], config["dataset"]
    )
    opt = make_optimizer(config, steps_per_epoch=-(-len(train_images) // config["batch_size"]))
    opt_state = opt.init(params) if resumed is None else resumed.opt_state
    step = make_train_step(net, opt, jit=not args.eager)
    full_run = is_full_run(config)
    kind = "full run" if full_run else "trial run"
    print(
        f"Training a {net.DESCRIPTION} on {len(train_images)} {config['dataset']} images, "
        f"testing on {len(test_images)} ({kind}); config {config}; writing to {display(run)}/"
    )
    for epoch in range(len(history) + 1, config["epochs"] + 1):
        progress.epoch = epoch
        start = time.perf_counter()
        params, opt_state, train_loss, train_accuracy = train_epoch(
            params, opt_state, step, net, train_images, train_labels, config, rng,
            f"epoch {epoch}/{config['epochs']}",
        )  # fmt: skip
        test_loss, test_accuracy, _ = evaluate(params, net, test_images, test_labels)
        seconds = time.perf_counter() - start
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_accuracy": train_accuracy,
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
                "epoch_time_s": seconds,
                "elapsed_s": seconds + (history[-1]["elapsed_s"] if history else 0.0),
            }
        )
        # The checkpoint first: once an epoch's summary is printed, it can be resumed from.
        metadata = {
            "config": config,
            "full_run": full_run,
            "rng_state": rng.bit_generator.state,
            "history": history,
        }
        checkpoint.save(run / CHECKPOINT, params, opt_state, metadata)
        progress.checkpoint, progress.checkpoint_epoch = run / CHECKPOINT, epoch
        write_json(run / METRICS, metrics_of(config, history, run, full_run))
        print(
            f"epoch {epoch:2d}/{config['epochs']}: train loss {train_loss:.4f}, "
            f"train accuracy {train_accuracy:.2%}, test loss {test_loss:.4f}, "
            f"test accuracy {test_accuracy:.2%} ({seconds:.1f} s)",
            flush=True,
        )
    progress.finished = True

    metrics = metrics_of(config, history, run, full_run)
    print(f"Final test accuracy: {metrics['final_test_accuracy']:.2%} "
          f"({metrics['wall_time_s']:.0f} s of training)")  # fmt: skip
    became_latest = full_run and announce_latest(run, metrics)
    if not full_run:
        announce_trial(run, config)
    if not args.no_plots:
        _, _, probabilities = evaluate(params, net, test_images, test_labels)
        written = save_plots(run, params, net, history, test_images, test_labels, probabilities)
        print(f"Wrote {CHECKPOINT}, {METRICS} and {', '.join(written)} to {display(run)}/")
    else:
        print(f"Wrote {CHECKPOINT} and {METRICS} to {display(run)}/")
    return Result(run, metrics, full_run, became_latest)


def announce_latest(run: Path, metrics: dict[str, Any]) -> bool:
    """Make a completed full run the latest model, saying which model it replaces."""
    previous = runs.latest_run(run.parent)
    before = ""
    if previous is not None and previous != run:
        accuracy = recorded_accuracy(previous)
        before = f", replacing {previous.name}" + (f" ({accuracy:.2%})" if accuracy else "")
    runs.mark_latest(run, metrics["config"]["model"])
    preferred = runs.preferred_checkpoint(run.parent, registry.PREDICTION_PREFERENCE).parent
    if preferred == run:
        uses = "which predict.py uses"
    else:
        accuracy = recorded_accuracy(preferred)
        uses = f"but predict.py prefers {preferred.name}" + (
            f" ({accuracy:.2%})" if accuracy else ""
        )
        uses += ", the latest full run of a model it ranks first (experiments/registry.py)"
    print(
        f"This full run is now the latest model ({display(run.parent / runs.LATEST)} -> "
        f"{run.name}{before}), {uses}"
    )
    return True


def announce_trial(run: Path, config: dict[str, Any]) -> None:
    full = recipe(config["model"])["epochs"]
    reasons = []
    if config["limit"] is not None:
        reasons.append(f"--limit {config['limit']}")
    if config["epochs"] < full:
        reasons.append(f"{config['epochs']} of the recipe's {full} epochs")
    latest = runs.latest_run(run.parent)
    if latest is None:
        kept = "there is no full run yet"
    else:
        accuracy = recorded_accuracy(latest)
        kept = f"the latest model is still {latest.name}" + (
            f" ({accuracy:.2%})" if accuracy else ""
        )
    predict = command("predict.py", "IMAGE", "--checkpoint", display(run))
    print(f"A trial run ({', '.join(reasons)}), so {kept}; to predict with this one: {predict}")


def recorded_accuracy(run: Path) -> float | None:
    """The final test accuracy a run's metrics.json records, if it can be read."""
    try:
        value = json.loads((run / METRICS).read_text()).get("final_test_accuracy")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def interrupt_message(progress: Progress) -> str:
    """The one line Ctrl-C prints: where the run stopped and how to continue it."""
    if progress.run is None:
        return "Interrupted before training started; nothing was written."
    if progress.finished:
        where = "after training, while writing the plots"
    elif progress.epoch == 0:
        where = "before the first epoch"
    elif progress.epoch == progress.checkpoint_epoch:  # between an epoch's checkpoint and the next
        where = f"after epoch {progress.epoch}/{progress.epochs}"
    else:
        where = f"in epoch {progress.epoch}/{progress.epochs}"
    if progress.checkpoint is None:
        return (
            f"Interrupted {where}, before the first checkpoint: nothing to resume "
            "(run the command again to start over)."
        )
    command = resume_command(progress.checkpoint, progress.no_plots)
    return (
        f"Interrupted {where}; the last checkpoint is {display(progress.checkpoint)} "
        f"(after epoch {progress.checkpoint_epoch}); resume with: {command}"
    )


def resume_command(path: Path, no_plots: bool) -> str:
    """The command that continues from ``path``, to be typed in the current directory."""
    return command("train.py", "--resume", display(path), *(["--no-plots"] if no_plots else []))


def command(script: str, *arguments: str) -> str:
    """A shell command running ``experiments/<script>`` from the current directory with this
    Python (spelled ``python`` when that is the one on PATH)."""
    python = "python"
    on_path = shutil.which("python")
    if on_path is None or not os.path.samefile(on_path, sys.executable):
        python = sys.executable
    return shlex.join([python, display(Path(__file__).resolve().with_name(script)), *arguments])


def metrics_of(
    config: dict[str, Any], history: list[dict[str, Any]], run: Path, full_run: bool
) -> dict[str, Any]:
    return {
        "run": run.name,
        "full_run": full_run,
        "config": config,
        "seed": config["seed"],
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "tinygrad_np": tg.__version__,
        },
        "epochs": history,
        "final_test_accuracy": history[-1]["test_accuracy"] if history else None,
        "wall_time_s": history[-1]["elapsed_s"] if history else 0.0,
    }


def save_plots(
    out: Path,
    params: Any,
    net: ModuleType,
    history: list[dict[str, Any]],
    images: Any,
    labels: Any,
    probabilities: Any,
) -> list[str]:
    """The figures of a run; returns their file names."""
    digits = (images * 255).round().astype(np.uint8)  # the plots show MNIST's own pixels
    predictions = np.argmax(probabilities, axis=1)
    plots.training_curves(history, out / "training_curves.png")
    plots.confusion_matrix(labels, predictions, out / "confusion_matrix.png")
    plots.prediction_grid(digits, labels, predictions, out / "predictions.png")
    plots.confident_mistakes(digits, labels, probabilities, out / "confident_mistakes.png")
    written = [
        "training_curves.png",
        "confusion_matrix.png",
        "predictions.png",
        "confident_mistakes.png",
    ]
    if hasattr(net, "plots"):
        written += net.plots(params, out)
    return written


def main(argv: list[str] | None = None) -> int:
    """The command: 0 when the run completes, 2 for a command line that cannot be carried
    out, 130 when interrupted (each error as one line on stderr, never a traceback)."""
    try:
        run_training(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as e:
        print(e, file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # a full disk, a directory removed under the run: not a bug here
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
