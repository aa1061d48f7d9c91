"""Classify your own pictures of handwritten digits with a trained MNIST checkpoint.

    python experiments/predict.py my_seven.png [more.jpg ...]
    python experiments/predict.py my_seven.png --checkpoint runs/mnist/checkpoint.npz
    python experiments/predict.py my_seven.png --show seven_input.png

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
from typing import Any, NamedTuple

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import numpy.typing as npt

from experiments import model
from experiments.preprocess import ImageError, load_grayscale, to_mnist
from tinygrad_np import checkpoint

DEFAULT_CHECKPOINT = Path("runs") / "mnist" / "checkpoint.npz"
TRAIN_COMMAND = "python experiments/train.py"
TOP_K = 3
EXIT_BAD_INPUT = 2  # as argparse uses for bad arguments


class CheckpointLoadError(Exception):
    """The checkpoint is missing or is not one of the MNIST MLP; the message says what to do."""


class Prediction(NamedTuple):
    """The top classes of one picture, most probable first, and the input the network saw."""

    ranking: list[tuple[int, float]]  # (digit, probability)
    network_input: npt.NDArray[np.float32]  # (28, 28), MNIST-style, ink = 1


def load_params(path: str | os.PathLike[str]) -> model.Params:
    """The MLP's parameters from a checkpoint, checked against the model's names and shapes.

    Raises ``CheckpointLoadError`` saying how to create a checkpoint when ``path`` is missing
    or does not hold the 784-128-10 MLP's parameters.
    """
    how_to_create = (
        f"create one with `{TRAIN_COMMAND}` (it writes {DEFAULT_CHECKPOINT}), "
        "or pass --checkpoint PATH"
    )
    p = Path(path)
    if not p.is_file():
        raise CheckpointLoadError(f"checkpoint {p} does not exist: {how_to_create}")
    try:
        # Learn the dtype the model was trained in (float32 by default), then load again
        # against the template of that dtype so that every name and shape is checked.
        saved = checkpoint.load(p).params
        w1 = saved.get("W1") if isinstance(saved, dict) else None
        dtype = w1.dtype if isinstance(w1, np.ndarray) and w1.dtype.kind == "f" else np.float32
        params: model.Params = checkpoint.load(p, like_params=model.zeros_params(dtype)).params
        return params
    except (checkpoint.CheckpointError, OSError) as e:
        raise CheckpointLoadError(
            f"{e}\n{p} is not a checkpoint of the 784-128-10 MNIST MLP: {how_to_create}"
        ) from None


def top_classes(probabilities: npt.NDArray[Any], k: int = TOP_K) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one probability row, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(c), float(probabilities[c])) for c in order]


def classify(
    params: model.Params, network_input: npt.NDArray[np.float32]
) -> list[tuple[int, float]]:
    """Top-3 (digit, probability) for one MNIST-style (28, 28) input in [0, 1]."""
    dtype = params["W1"].dtype
    row = network_input.reshape(1, -1).astype(dtype)
    return top_classes(np.asarray(model.probabilities(params, row))[0])


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
        description="Classify pictures of handwritten digits with a trained MNIST MLP: "
        "prints the top-3 digits with their probabilities.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, ... of one digit")
    parser.add_argument(
        "--checkpoint",
        default=str(DEFAULT_CHECKPOINT),
        help=f"trained model (default: {DEFAULT_CHECKPOINT}, written by {TRAIN_COMMAND})",
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
        params = load_params(args.checkpoint)
    except CheckpointLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
        prediction = Prediction(classify(params, network_input), network_input)
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
