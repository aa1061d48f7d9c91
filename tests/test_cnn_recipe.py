"""The convolutional network's recipe (``train.py --model cnn``) end to end, on tiny subsets:
the MLP's pipeline (metrics, plots, checkpoints, resume, bit-identical reruns) and
``predict.py`` on whichever model a checkpoint holds. No run here trains beyond a few
hundred digits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_np as tg
from experiments import cnn, predict, registry, runs, train
from tinygrad_np import checkpoint

TINY = ["--model", "cnn", "--limit", "256"]


def params_of(run: Path) -> dict[str, Any]:
    return checkpoint.load(run / runs.CHECKPOINT, like_params=cnn.zeros_params()).params


def without_times(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if not k.endswith("_s")} for h in history]


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> train.Result:
    out = tmp_path_factory.mktemp("runs")
    return train.run_training([*TINY, "--epochs", "1", "--out", str(out)])


def test_the_cnn_is_a_registered_model_with_its_own_recipe() -> None:
    assert registry.get("cnn") is cnn
    config = train.recipe("cnn")
    assert {k: config[k] for k in cnn.RECIPE} == cnn.RECIPE
    assert sum(np.prod(shape) for shape in cnn.PARAM_SHAPES.values()) == 184_586


def test_a_trial_run_writes_metrics_checkpoint_and_plots_with_the_filters(
    trial: train.Result,
) -> None:
    metrics = json.loads((trial.run / runs.METRICS).read_text())
    assert metrics["config"]["model"] == "cnn" and not metrics["full_run"]
    assert 0 <= metrics["final_test_accuracy"] <= 1
    params = params_of(trial.run)
    assert all(p.dtype == np.float32 for p in params.values())
    for name in ("training_curves.png", "confusion_matrix.png", "first_layer_filters.png"):
        assert (trial.run / name).stat().st_size > 5000, name


def test_same_seed_gives_the_same_network_bit_for_bit(tmp_path: Path) -> None:
    a, b = (
        train.run_training([*TINY, "--epochs", "2", "--no-plots", "--out", str(tmp_path)])
        for _ in range(2)
    )
    assert without_times(a.metrics["epochs"]) == without_times(b.metrics["epochs"])
    for name, value in params_of(a.run).items():
        np.testing.assert_array_equal(value, params_of(b.run)[name])


def test_resuming_gives_the_same_network_as_not_stopping(tmp_path: Path) -> None:
    # Dropout's keys come from the run's generator, whose state the checkpoint keeps.
    args = [*TINY, "--no-plots", "--out", str(tmp_path)]
    straight = train.run_training([*args, "--epochs", "2"])
    stopped = train.run_training([*args, "--epochs", "1"])
    resumed = train.run_training(["--resume", str(stopped.run), "--epochs", "2", "--no-plots"])
    assert without_times(resumed.metrics["epochs"]) == without_times(straight.metrics["epochs"])
    for name, value in params_of(straight.run).items():
        np.testing.assert_array_equal(value, params_of(resumed.run)[name])


def test_dropout_acts_only_when_the_forward_pass_is_given_a_key() -> None:
    params = cnn.init_params(np.random.default_rng(0))
    x = np.random.default_rng(1).random((4, 1, 28, 28)).astype(np.float32)
    evaluation = cnn.forward(params, x)
    assert np.array_equal(evaluation, cnn.forward(params, x))
    assert evaluation.dtype == np.float32 and evaluation.shape == (4, 10)
    key = tg.random.key(0)
    training = cnn.forward(params, x, key)
    assert np.array_equal(training, cnn.forward(params, x, key))
    assert not np.allclose(training, evaluation)


def test_predict_rebuilds_the_cnn_from_its_checkpoint(
    trial: train.Result, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    model = predict.load_model(trial.run)
    assert model.net is cnn and "convolutional network" in model.description
    page = Image.new("L", (100, 100), 255)
    page.paste(0, (45, 10, 55, 90))  # a "1"
    page.save(tmp_path / "one.png")
    assert predict.main([str(tmp_path / "one.png"), "--checkpoint", str(trial.run)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'one.png'}: ") and "convolutional network" in err
    ranking = predict.classify(model, np.zeros((28, 28), np.float32))
    assert len(ranking) == 3 and sum(p for _, p in ranking) <= 1 + 1e-6


def test_the_same_recipe_trains_on_fashion_mnist(tmp_path: Path) -> None:
    from tinygrad_np import datasets

    if not (datasets.DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    args = [*TINY, "--dataset", "fashion-mnist", "--epochs", "1", "--no-plots"]
    result = train.run_training([*args, "--out", str(tmp_path)])
    assert result.metrics["config"]["dataset"] == "fashion-mnist"
    assert result.metrics["final_test_accuracy"] > 0.2  # 256 images, one epoch: above chance
    with pytest.raises(train.UsageError, match="--dataset mnist differs from the checkpoint's"):
        train.run_training(["--resume", str(result.run), "--epochs", "2", "--dataset", "mnist"])


def test_printed_digits_compares_models_on_typefaces_and_handwriting(
    trial: train.Result, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from experiments import printed_digits

    out = tmp_path / "pictures"
    status = printed_digits.main([str(trial.run), "--out", str(out), "--handwritten", "3"])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split("  ")[0]: line for line in lines}
    for group in [*printed_digits.TYPEFACES, printed_digits.HANDWRITTEN]:
        assert group in rows, lines
    assert "/10" in rows["DejaVu Serif"] and "/3" in rows[printed_digits.HANDWRITTEN]
    assert len(list(out.glob("*.png"))) == 10 * len(printed_digits.TYPEFACES) + 3


class Draws:
    """A stand-in for np.random.Generator whose ``uniform`` returns given values."""

    def __init__(self, angle: float, scale: float, shift: tuple[float, float]) -> None:
        self.values = [angle, scale, np.array(shift)]

    def uniform(self, low: Any, high: Any, size: Any) -> Any:
        size = (size,) if isinstance(size, int) else size
        return np.reshape(self.values.pop(0), (-1,) + (1,) * (len(size) - 1)) * np.ones(size)


def affine(image: Any, angle: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> Any:
    draws = Draws(angle, scale, shift)
    return train.random_affine(image[None], 1, 1, 1, draws)[0]  # type: ignore[arg-type]


def test_random_affine_rotates_scales_and_moves_about_the_centre() -> None:
    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    assert np.array_equal(affine(image), image)  # the identity, exactly
    # A quarter turn (clockwise on screen) is a rotation of the pixel grid.
    np.testing.assert_allclose(affine(image, angle=90), np.rot90(image, -1), atol=1e-6)
    # A shift by whole pixels moves the image, leaving a blank border.
    moved = affine(image, shift=(2.0, -3.0))
    np.testing.assert_array_equal(moved[2:, :-3], image[:-2, 3:])
    assert not moved[:2].any() and not moved[:, -3:].any()
    # Scaling by 2 about the centre reads the centre's neighbourhood, half a pixel per pixel.
    zoomed = affine(image, scale=2.0)
    np.testing.assert_allclose(zoomed[13:15, 13:15].mean(), image[13:15, 13:15].mean(), rtol=0.2)
    # Sources outside the frame are blank.
    assert not affine(image, shift=(40.0, 0.0)).any()
    assert affine(image, angle=7, scale=1.1).dtype == np.float32


def test_random_affine_draws_per_image_within_its_bounds() -> None:
    images = np.zeros((500, 28, 28), np.float32)
    images[:, 13:15, 13:15] = 1  # a dot at the centre
    out = train.random_affine(images, 2, 10, 0.1, np.random.default_rng(0))
    rows, cols = np.indices((28, 28))
    mass = out.sum(axis=(1, 2))
    centre_rows = (out * rows).sum(axis=(1, 2)) / mass
    centre_cols = (out * cols).sum(axis=(1, 2)) / mass
    # Rotation and scaling are about the centre: only the shift moves the dot, by up to 2.
    assert np.all(np.abs(centre_rows - 13.5) <= 2 + 1e-4)
    assert np.all(np.abs(centre_cols - 13.5) <= 2 + 1e-4)
    assert np.std(centre_rows) > 0.5  # and images move differently
