"""The classic "neural network from scratch with NumPy" MNIST tutorial, reproduced exactly.

A 784-128-10 MLP (ReLU, softmax, categorical cross-entropy) trained by 2000
iterations of full-batch gradient descent with learning rate 0.5, in float64,
from ``np.random.seed(0)``. It is trained twice from the same start:

1. with the tutorial's backpropagation, derived by hand (``loss_and_gradients_by_hand``);
2. with ``tg.value_and_grad`` applied to the forward code (``loss_and_gradients_by_tg``).

Everything else -- the data, the initial weights, the update -- is shared, so the
two runs differ only in how the gradient is computed, and their final weights
should agree to rounding error. Conventions: one image per row, so ``X`` is
(m, 784), ``Z1 = X @ W1 + b1`` with ``W1`` (784, 128) and ``b1`` (1, 128), and
``Z2 = A1 @ W2 + b2`` with ``W2`` (128, 10) and ``b2`` (1, 10).

    python experiments/tutorial.py                  # the full run: an hour or more, see below
    python experiments/tutorial.py --iterations 50  # a quick look

How long it takes: each iteration is a full pass over the 60000 images, forward and backward,
about 0.8 s of CPU time per iteration and method on the 2-core AMD EPYC development VM (one BLAS
thread, 10 iterations timed with ``time.process_time``). The full run, 2000 iterations twice, is
then about 55 minutes of one core's time (an extrapolation). Measured with ``--iterations 50`` on
that VM while other jobs kept its load average at 6-9: 503 and 509 s with one BLAS thread, 411 and
403 s with two, so it uses every core by default (``--threads``); 40 times that, 4.5 hours, is what
the full run would take on that busy machine. After a few iterations it prints its own estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from threadpoolctl import threadpool_limits

import tinygrad_np as tg
from experiments import model, plots
from tinygrad_np.datasets import DatasetError, mnist

ITERATIONS = 2000
LEARNING_RATE = 0.5
PACE_AFTER = 5  # iterations timed before the run's duration is estimated
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "runs" / "tutorial"
# Every core this process may use: on the 2-core VM two BLAS threads beat one (see above).
BLAS_THREADS = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
REPORTED_TEST_ACCURACY = 0.9747  # what the tutorial reports after 2000 iterations

Params = dict[str, Any]
LossAndGradients = Callable[[Params, Any, Any], tuple[Any, Params]]


def init_params() -> Params:
    """The tutorial's initialisation: small Gaussian weights drawn W1 first, zero biases.

    It uses NumPy's legacy global RNG, as the tutorial does, to get the same numbers.
    """
    np.random.seed(0)  # noqa: NPY002
    W1 = np.random.randn(784, 128) * 0.01  # noqa: NPY002
    b1 = np.zeros((1, 128))
    W2 = np.random.randn(128, 10) * 0.01  # noqa: NPY002
    b2 = np.zeros((1, 10))
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def softmax(Z: Any) -> Any:
    expZ = np.exp(Z - np.max(Z, axis=1, keepdims=True))
    return expZ / np.sum(expZ, axis=1, keepdims=True)


def loss_and_gradients_by_hand(params: Params, X: Any, Y: Any) -> tuple[Any, Params]:
    """The tutorial's forward pass and its hand-derived backward pass (plain NumPy)."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    m = X.shape[0]
    # forward
    Z1 = X @ W1 + b1
    A1 = np.maximum(0, Z1)
    Z2 = A1 @ W2 + b2
    A2 = softmax(Z2)
    # -sum(Y * log(A2)) / m, summing only the true class's term (Y is one-hot), so a
    # probability that underflows to 0 in a wrong class cannot give 0 * log(0) = nan.
    loss = -np.mean(np.log(np.sum(Y * A2, axis=1)))
    # backward
    dZ2 = A2 - Y
    dW2 = A1.T @ dZ2 / m
    db2 = np.sum(dZ2, axis=0, keepdims=True) / m
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = X.T @ dZ1 / m
    db1 = np.sum(dZ1, axis=0, keepdims=True) / m
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def loss_and_gradients_by_tg(params: Params, X: Any, Y: Any) -> tuple[Any, Params]:
    """The same forward pass (``model.loss``), differentiated by tinygrad_np."""
    return tg.value_and_grad(model.loss)(params, X, Y)  # type: ignore[no-any-return]


def gradient_descent(
    loss_and_gradients: LossAndGradients,
    params: Params,
    X: Any,
    Y: Any,
    iterations: int,
    lr: float,
) -> tuple[Params, list[float]]:
    """Full-batch gradient descent; prints the loss every 100 iterations, and after the
    first few how long the run will take at that pace."""
    losses = []
    start = time.perf_counter()
    for i in range(iterations):
        loss, grads = loss_and_gradients(params, X, Y)
        params = {name: params[name] - lr * grads[name] for name in params}
        losses.append(float(loss))
        if i % 100 == 0:
            print(f"Iteration {i}: loss {float(loss):.4f}", flush=True)
        if i + 1 == PACE_AFTER < iterations:
            pace = (time.perf_counter() - start) / PACE_AFTER
            print(
                f"   ({pace:.2f} s per iteration: about {pace * iterations / 60:.0f} min for "
                f"this run's {iterations} iterations)",
                flush=True,
            )
    return params, losses


class UsageError(Exception):
    """A command line that cannot be carried out; the message says why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's usage error, without exiting the tests
        raise UsageError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python experiments/tutorial.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=ITERATIONS, help="gradient-descent iterations per run"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=BLAS_THREADS,
        help=f"BLAS threads for the matrix products (default {BLAS_THREADS}, see above)",
    )
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error(f"--iterations must be at least 1, got {args.iterations}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def run_tutorial(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` and run the tutorial twice; raises ``UsageError`` for a command line
    that cannot be carried out."""
    args = parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the output directory {args.out}: {e.strerror}") from None
    try:
        data = mnist()
    except (DatasetError, OSError) as e:
        raise UsageError(f"cannot read MNIST: {e}") from None
    with threadpool_limits(limits=args.threads, user_api="blas"):
        return _run(args, *data)


def _run(args: argparse.Namespace, x_train: Any, y_train: Any, x_test: Any, y_test: Any) -> Any:
    X = model.preprocess(x_train, np.float64)
    Y = np.eye(10)[y_train]
    X_test = model.preprocess(x_test, np.float64)

    runs: dict[str, tuple[Params, list[float]]] = {}
    for name, loss_and_gradients in (
        ("hand-derived backprop", loss_and_gradients_by_hand),
        ("tg.value_and_grad", loss_and_gradients_by_tg),
    ):
        print(f"== {name}: {args.iterations} iterations, learning rate {LEARNING_RATE}")
        start = time.perf_counter()
        runs[name] = gradient_descent(
            loss_and_gradients, init_params(), X, Y, args.iterations, LEARNING_RATE
        )
        print(f"   ({time.perf_counter() - start:.0f} s)")

    (hand, hand_losses), (auto, auto_losses) = runs.values()
    differences = {name: float(np.max(np.abs(hand[name] - auto[name]))) for name in hand}
    worst = max(differences, key=differences.__getitem__)
    results = {
        "iterations": args.iterations,
        "test_accuracy_hand": model.accuracy(hand, X_test, y_test),
        "test_accuracy_tg": model.accuracy(auto, X_test, y_test),
        "reported_test_accuracy": REPORTED_TEST_ACCURACY,
        "max_abs_weight_difference": differences,
        "final_loss_hand": hand_losses[-1],
        "final_loss_tg": auto_losses[-1],
    }
    print(f"Test accuracy, hand-derived backprop: {results['test_accuracy_hand']:.2%}")
    print(f"Test accuracy, tg.value_and_grad:     {results['test_accuracy_tg']:.2%}")
    if args.iterations == ITERATIONS:  # the figure is for the full run only
        print(f"Test accuracy the tutorial reports:   {REPORTED_TEST_ACCURACY:.2%}")
    print(
        f"Largest |difference| between the two runs' final weights: "
        f"{differences[worst]:.3g} (in {worst})"
    )
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    plots.sample_digits(x_train[:16], y_train[:16], args.out / "sample_digits.png")
    plots.loss_curves(
        {"hand-derived backprop": hand_losses, "tg.value_and_grad": auto_losses},
        args.out / "loss_curve.png",
        title=f"Full-batch gradient descent, learning rate {LEARNING_RATE}",
    )
    predictions = np.argmax(model.forward(hand, X_test), axis=1)
    plots.prediction_grid(x_test, y_test, predictions, args.out / "predictions.png")
    print(f"Wrote results.json and plots to {args.out}/")
    return results


def main(argv: list[str] | None = None) -> int:
    """The command: 0 when the runs complete, 2 (one error line) for a command line that
    cannot be carried out, 130 on Ctrl-C."""
    try:
        run_tutorial(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; the tutorial keeps no checkpoint: run it again to start over.",
              file=sys.stderr)  # fmt: skip
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
