"""The experiments' figures, each written to a PNG file.

Every function takes plain arrays and a path, builds one matplotlib Figure
(without pyplot, so no display or global state is involved) and saves it.
Digits are shown as the dataset stores them: black ink on white.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps, ticker
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

RIGHT, WRONG = "tab:green", "tab:red"
DPI = 100


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")


def _digit_grid(
    images: np.ndarray[Any, Any],
    titles: Sequence[str],
    colors: Sequence[str],
    columns: int,
    suptitle: str,
) -> Figure:
    rows = max(1, -(-len(images) // columns))
    fig = Figure(figsize=(1.3 * columns, 1.5 * rows + 0.6))
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i].reshape(28, 28), cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(titles[i], color=colors[i], fontsize=9)
    fig.suptitle(suptitle)
    return fig


def sample_digits(
    images: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    path: str | os.PathLike[str],
    columns: int = 8,
) -> None:
    """A grid of digits, each titled with its label."""
    titles = [f"label {int(y)}" for y in labels]
    fig = _digit_grid(images, titles, ["black"] * len(images), columns, "Sample training digits")
    _save(fig, path)


def prediction_grid(
    images: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    predictions: np.ndarray[Any, Any],
    path: str | os.PathLike[str],
    first: int = 32,
    mistakes: int = 8,
    columns: int = 8,
) -> None:
    """The first ``first`` test digits, then the next ``mistakes`` misclassified ones (so a
    good model's errors show too), titled ``prediction (true label)``: green when right,
    red when wrong."""
    leading = list(range(min(first, len(labels))))
    wrong = np.flatnonzero(predictions != labels)
    later_mistakes = [int(i) for i in wrong[wrong >= first][:mistakes]]
    shown = leading + later_mistakes
    titles = [f"{predictions[i]} (true {labels[i]})" for i in shown]
    colors = [RIGHT if predictions[i] == labels[i] else WRONG for i in shown]
    wrong_leading = int(np.sum(predictions[leading] != labels[leading]))
    suptitle = (
        f"Predictions (true label) of the first {len(leading)} test digits: "
        f"{len(leading) - wrong_leading} right (green), {wrong_leading} wrong (red)"
        + (f";\nthen the next {len(later_mistakes)} mistakes" if later_mistakes else "")
    )
    _save(_digit_grid(images[shown], titles, colors, columns, suptitle), path)


def confident_mistakes(
    images: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    probabilities: np.ndarray[Any, Any],
    path: str | os.PathLike[str],
    count: int = 24,
    columns: int = 8,
) -> None:
    """The misclassified digits the model was most sure about, most confident first."""
    predictions = np.argmax(probabilities, axis=1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    worst = wrong[np.argsort(-confidence, kind="stable")[:count]]
    titles = [
        f"{predictions[i]} ({probabilities[i, predictions[i]]:.1%})\ntrue {labels[i]}"
        for i in worst
    ]
    fig = _digit_grid(
        images[worst],
        titles,
        [WRONG] * len(worst),
        columns,
        f"Most confidently wrong test digits ({len(worst)} of {len(wrong)} mistakes): "
        "prediction (probability), true label",
    )
    _save(fig, path)


def loss_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    xlabel: str = "iteration",
    title: str = "Training loss",
) -> None:
    """One line per named loss sequence, on a log scale."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(np.arange(len(values)), values, styles[i % len(styles)], label=name, linewidth=1.5)
    # A log scale keeps the late, slow decrease readable beside the first steps' big drop.
    ax.set_yscale("log")
    _plain_log_labels(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cross-entropy loss (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)


def _plain_log_labels(ax: Any) -> None:
    """Label a log y axis with plain numbers (0.2, not 2x10^-1): every tick when the axis
    spans less than a decade, else those at 1, 2, 3 and 5 times a power of ten."""

    def label(value: float, _position: int) -> str:
        low, high = ax.get_ylim()
        mantissa = value / 10 ** np.floor(np.log10(value))
        if high / low < 10 or np.any(np.isclose(mantissa, [1, 2, 3, 5, 10])):
            return f"{value:g}"
        return ""

    ax.yaxis.set_major_formatter(ticker.FuncFormatter(label))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(label))


def training_curves(history: Sequence[Mapping[str, float]], path: str | os.PathLike[str]) -> None:
    """Loss and accuracy per epoch, train and test, side by side."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(11, 4.2))
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss_ax.plot(epochs, [h["test_loss"] for h in history], "s--", label="test")
    loss_ax.set_title("Loss")
    loss_ax.set_ylabel("cross-entropy loss")
    acc_ax.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", label="train")
    acc_ax.plot(epochs, [100 * h["test_accuracy"] for h in history], "s--", label="test")
    acc_ax.set_title("Accuracy")
    acc_ax.set_ylabel("accuracy (%)")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Training curves (train: running mean over the epoch's mini-batches)")
    _save(fig, path)


def confusion_matrix(
    labels: np.ndarray[Any, Any],
    predictions: np.ndarray[Any, Any],
    path: str | os.PathLike[str],
    classes: int = 10,
) -> None:
    """Counts of (true label, predicted label), with each cell's count written in it."""
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    # A log-like colour scale would hide the diagonal's size; colour the off-diagonal
    # mistakes on their own scale so they stand out, and the diagonal in grey.
    mistakes = np.where(np.eye(classes, dtype=bool), 0, counts)
    image = ax.imshow(mistakes, cmap="Reds", vmin=0, vmax=max(1, int(mistakes.max())))
    for i in range(classes):
        for j in range(classes):
            if i == j:
                ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, color="lightgrey"))
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    accuracy = np.trace(counts) / max(1, counts.sum())
    ax.set_title(f"Confusion matrix ({counts.sum()} test digits, accuracy {accuracy:.2%})")
    fig.colorbar(image, ax=ax, label="mistakes (off-diagonal count)")
    _save(fig, path)


def first_layer_weights(weights: np.ndarray[Any, Any], path: str | os.PathLike[str]) -> None:
    """Each hidden unit's 784 input weights as a 28x28 tile (blue < 0 < red), 16 per row."""
    units = weights.shape[1]
    columns = 16
    rows = -(-units // columns)
    limit = float(np.max(np.abs(weights))) or 1.0
    # One mosaic with 1-pixel gaps (NaN, drawn white) is much faster to draw than 128 axes.
    mosaic = np.full((rows * 29 - 1, columns * 29 - 1), np.nan)
    for i in range(units):
        top, left = 29 * (i // columns), 29 * (i % columns)
        mosaic[top : top + 28, left : left + 28] = weights[:, i].reshape(28, 28)
    fig = Figure(figsize=(columns * 0.75, rows * 0.75 + 0.8))
    ax = fig.subplots()
    ax.set_axis_off()
    cmap = colormaps["bwr"].with_extremes(bad="white")
    image = ax.imshow(mosaic, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(f"First-layer weights of the {units} hidden units, one 28x28 tile per unit")
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight (blue negative, red positive)")
    _save(fig, path)


def conv_filters(weights: np.ndarray[Any, Any], path: str | os.PathLike[str]) -> None:
    """A convolution's filters (out, in, kh, kw), one tile per output channel (the sum over
    input channels, which for a first layer on greyscale images is the filter itself),
    8 per row, blue < 0 < red on one scale."""
    filters = weights.sum(axis=1)
    count, kh, kw = filters.shape
    columns = min(8, count)
    rows = -(-count // columns)
    limit = float(np.max(np.abs(filters))) or 1.0
    mosaic = np.full((rows * (kh + 1) - 1, columns * (kw + 1) - 1), np.nan)
    for i in range(count):
        top, left = (kh + 1) * (i // columns), (kw + 1) * (i % columns)
        mosaic[top : top + kh, left : left + kw] = filters[i]
    fig = Figure(figsize=(columns * 0.9 + 1.5, rows * 0.9 + 0.8))
    ax = fig.subplots()
    ax.set_axis_off()
    cmap = colormaps["bwr"].with_extremes(bad="white")
    image = ax.imshow(mosaic, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(f"First-layer filters: {count} of {kh}x{kw}, one tile per filter")
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight (blue negative, red positive)")
    _save(fig, path)
