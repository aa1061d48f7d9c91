"""Classify your own pictures of handwritten digits with a trained MNIST model.

    python experiments/predict.py my_seven.png [more.jpg ...]
    python experiments/predict.py my_seven.png --checkpoint runs/mnist/20261129-141502
    python experiments/predict.py my_seven.png --show seven_input.png

By default the model is the latest full run of ``experiments/train.py`` in ``runs/mnist/`` in the
repository, whatever the working directory: that of the convolutional network once one has
completed (``runs/mnist/latest-cnn``; it is the more accurate), else that of any model
(``runs/mnist/latest``). ``--checkpoint`` takes a checkpoint file, a run directory or a runs
directory (its latest full run, of any model). Whichever model the checkpoint holds
is rebuilt (``experiments/registry.py``), and a first line on stderr says which checkpoint was
used and the test accuracy its run recorded.

Each picture (PNG, JPEG, ...; any size; dark ink on light paper or light on dark; colour,
greyscale or transparent) is turned into the 28x28 input MNIST would have made of it (see
``experiments/preprocess.py``), and the three most probable digits are printed with their
softmax probabilities, one line per picture::

    my_seven.png: 7 (97.1%), 1 (1.6%), 2 (0.5%)

``--show PATH`` also saves a PNG with each picture beside the input the network saw.  A picture
that cannot be read or holds no digit gets an error line naming it, and the exit status is 2;
the other pictures are still classified.  Without a checkpoint, train one first with
``python experiments/train.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import numpy.typing as npt

from experiments import registry, runs
from experiments.preprocess import ImageError, load_grayscale, to_mnist
from experiments.runs import display
from tinygrad_np import checkpoint, tree_leaves

TRAIN_COMMAND = "python experiments/train.py"
TOP_K = 3
EXIT_BAD_INPUT = 2  # as argparse uses for bad arguments


class CheckpointLoadError(Exception):
    """The checkpoint is missing or holds no model we know; the message says what to do."""


class Prediction(NamedTuple):
    """The top classes of one picture, most probable first, and the input the network saw."""

    ranking: list[tuple[int, float]]  # (digit, probability)
    network_input: npt.NDArray[np.float32]  # (28, 28), MNIST-style, ink = 1


class Model(NamedTuple):
    """A trained model: its module, parameters, the checkpoint file and a description."""

    net: ModuleType
    params: Any
    checkpoint: Path
    description: str


def load_model(path: str | os.PathLike[str] | None = None) -> Model:
    """The model a checkpoint holds (``path``: a checkpoint, run directory or runs directory;
    by default the preferred model of ``runs/mnist``, see above), its parameters checked
    against the model's names, shapes and dtype.

    Raises ``CheckpointLoadError`` saying how to create a checkpoint when there is none or it
    does not hold a model's parameters.
    """
    how_to_create = (
        f"create one with `{TRAIN_COMMAND}` (its full runs become {display(runs.DEFAULT_RUNS)}/"
        f"{runs.LATEST}), or pass --checkpoint PATH"
    )
    try:
        if path is None:
            file = runs.preferred_checkpoint(runs.DEFAULT_RUNS, registry.PREDICTION_PREFERENCE)
        else:
            file = runs.find_checkpoint(Path(path))
    except runs.RunError as e:
        raise CheckpointLoadError(f"{e}: {how_to_create}") from None
    description = "a trained model"
    try:
        saved = checkpoint.load(file)
        config = saved.metadata.get("config")
        name = config.get("model", "mlp") if isinstance(config, dict) else "mlp"
        net = registry.get(name)
        description = f"the {net.DESCRIPTION}"
        # The dtype the model was trained in (float32 by default); loading again against the
        # template of that dtype checks every name and shape.
        floats = [x for x in tree_leaves(saved.params) if getattr(x, "dtype", None) is not None]
        dtype = floats[0].dtype if floats and floats[0].dtype.kind == "f" else np.float32
        params = checkpoint.load(file, like_params=net.zeros_params(dtype)).params
    except (checkpoint.CheckpointError, registry.UnknownModelError, OSError) as e:
        raise CheckpointLoadError(
            f"{e}\n{display(file)} is not a checkpoint of {description}: {how_to_create}"
        ) from None
    return Model(net, params, file, describe(net, saved.metadata))


def describe(net: ModuleType, metadata: dict[str, Any]) -> str:
    """``784-128-10 MLP, full run of 20 epochs, test accuracy 98.42%``, from what the training
    run recorded in the checkpoint."""
    history, config = metadata.get("history"), metadata.get("config")
    if not (isinstance(history, list) and history and isinstance(config, dict)):
        return f"{net.DESCRIPTION}; no training history recorded"
    done, planned, limit = len(history), config.get("epochs"), config.get("limit")
    kind = "full run" if metadata.get("full_run") else "trial run"
    if isinstance(planned, int) and done < planned:
        run = f"{kind} stopped after {done} of {planned} epochs"
    else:
        run = f"{kind} of {done} epoch{'s' if done != 1 else ''}"
    if limit:
        run += f" on {limit} digits"
    accuracy = history[-1].get("test_accuracy") if isinstance(history[-1], dict) else None
    if not isinstance(accuracy, int | float):
        return f"{net.DESCRIPTION}, {run}"
    tested = f" of the first {limit}" if limit else ""
    return f"{net.DESCRIPTION}, {run}, test accuracy {accuracy:.2%}{tested}"


def load_params(path: str | os.PathLike[str] | None = None) -> Any:
    """The parameters of the model a checkpoint holds (see :func:`load_model`)."""
    return load_model(path).params


def top_classes(probabilities: npt.NDArray[Any], k: int = TOP_K) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one probability row, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(c), float(probabilities[c])) for c in order]


def classify(model: Model, network_input: npt.NDArray[np.float32]) -> list[tuple[int, float]]:
    """Top-3 (digit, probability) for one MNIST-style (28, 28) input in [0, 1]."""
    dtype = tree_leaves(model.params)[0].dtype
    batch = model.net.inputs(network_input[None].astype(dtype))
    return top_classes(np.asarray(model.net.probabilities(model.params, batch))[0])


def format_ranking(name: str, ranking: Sequence[tuple[int, float]]) -> str:
    """``name: 7 (97.1%), 1 (1.6%), 2 (0.5%)``."""
    return f"{name}: " + ", ".join(f"{digit} ({100 * p:.1f}%)" for digit, p in ranking)


def save_comparison(
    path: str | os.PathLike[str],
    names: Sequence[str],
    pictures: Sequence[npt.NDArray[Any]],
    predictions: Sequence[Prediction],
) -> None:
    """A PNG with one row per picture: the picture (greyscale) and the network's input."""
    from matplotlib.figure import Figure  # only --show needs matplotlib

    fig = Figure(figsize=(6, 3 * len(pictures)), layout="constrained")
    axes = fig.subplots(len(pictures), 2, squeeze=False)
    for (left, right), name, picture, prediction in zip(
        axes, names, pictures, predictions, strict=True
    ):
        left.imshow(picture, cmap="gray", vmin=0, vmax=1)
        left.set_title(f"{Path(name).name} {picture.shape[1]}x{picture.shape[0]}", fontsize=9)
        # Ink dark on white, as the project's other figures show MNIST digits.
        right.imshow(
            prediction.network_input, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest"
        )
        digit, probability = prediction.ranking[0]
        right.set_title(f"28x28 input: {digit} ({100 * probability:.1f}%)", fontsize=9)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")  # PNG whatever the name ends in


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python experiments/predict.py",
        description="Classify pictures of handwritten digits with a trained MNIST model: "
        "prints the top-3 digits with their probabilities.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, ... of one digit")
    parser.add_argument(
        "--checkpoint",
        help="a checkpoint, run directory, or runs directory (its latest full run); default: "
        f"the latest full run of {TRAIN_COMMAND} in {runs.DEFAULT_RUNS}, the convolutional "
        f"network's ({runs.LATEST}-cnn) once there is one",
    )
    parser.add_argument(
        "--show",
        metavar="PATH",
        help="save a PNG of each picture beside the 28x28 input the network saw",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0, or 2 if any input was unusable)."""
    args = parse_args(argv)
    try:
        model = load_model(args.checkpoint)
    except CheckpointLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Model: {display(model.checkpoint)} ({model.description})", file=sys.stderr)
    status = 0
    names: list[str] = []
    pictures: list[npt.NDArray[Any]] = []
    predictions: list[Prediction] = []
    for name in args.images:
        try:
            picture = load_grayscale(name)
            network_input = to_mnist(picture, name=name)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            status = EXIT_BAD_INPUT
            continue
        prediction = Prediction(classify(model, network_input), network_input)
        print(format_ranking(name, prediction.ranking))
        names.append(name)
        pictures.append(picture)
        predictions.append(prediction)
    if args.show and predictions:
        try:
            save_comparison(args.show, names, pictures, predictions)
        except (OSError, ValueError) as e:
            print(f"error: cannot save --show figure {args.show}: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"saved {args.show}")
    return status


if __name__ == "__main__":
    sys.exit(main())
