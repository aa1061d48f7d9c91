"""The experiments end to end, on small subsets: outputs, plots, determinism, resuming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import tinygrad_np as tg
from experiments import model, train, tutorial
from tinygrad_np import checkpoint
from tinygrad_np.checkpoint import CheckpointError

TRAIN_PLOTS = [
    "training_curves.png",
    "confusion_matrix.png",
    "predictions.png",
    "first_layer_weights.png",
    "confident_mistakes.png",
]
TUTORIAL_PLOTS = ["sample_digits.png", "loss_curve.png", "predictions.png"]
GREEN, RED = (44, 160, 44), (214, 39, 40)  # matplotlib's tab:green and tab:red


def pixels(path: Path) -> np.ndarray[Any, Any]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int64)


def count_colour(image: np.ndarray[Any, Any], rgb: tuple[int, int, int]) -> int:
    return int(np.sum(np.all(np.abs(image - np.array(rgb)) <= 30, axis=-1)))


def assert_nontrivial_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    image = pixels(path)
    assert image.shape[0] >= 200 and image.shape[1] >= 300, f"{path.name} is tiny: {image.shape}"
    assert image.std() > 10, f"{path.name} is (nearly) blank"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20, f"{path.name} has hardly any detail"


def without_times(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if not k.endswith("_s")} for h in history]


def trained_params(out: Path) -> dict[str, Any]:
    return checkpoint.load(out / train.CHECKPOINT, like_params=model.zeros_params()).params


# --- train.py ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("train")
    metrics = train.main(["--limit", "2000", "--epochs", "1", "--out", str(out)])
    return out, metrics


def test_train_writes_metrics_with_history_versions_and_config(
    train_run: tuple[Path, dict[str, Any]],
) -> None:
    out, returned = train_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == returned
    assert set(metrics) == {
        "config",
        "seed",
        "versions",
        "epochs",
        "final_test_accuracy",
        "wall_time_s",
    }
    assert set(metrics["versions"]) == {"python", "numpy", "tinygrad_np"}
    assert metrics["versions"]["tinygrad_np"] == tg.__version__
    assert metrics["config"]["limit"] == 2000 and metrics["config"]["epochs"] == 1
    (epoch,) = metrics["epochs"]
    assert set(epoch) == {
        "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
        "epoch_time_s", "elapsed_s",
    }  # fmt: skip
    assert epoch["epoch"] == 1 and epoch["epoch_time_s"] > 0
    # One epoch on 2000 digits is far from converged but far better than chance (10%).
    assert 0.5 < epoch["test_accuracy"] == metrics["final_test_accuracy"] < 1


def test_train_saves_a_checkpoint_of_the_model(train_run: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = train_run
    saved = checkpoint.load(out / train.CHECKPOINT, like_params=model.zeros_params())
    assert saved.metadata["history"] == metrics["epochs"]
    assert saved.opt_state["count"] == 16  # ceil(2000 / 128) Adam updates
    assert saved.metadata["config"] == metrics["config"]


@pytest.mark.parametrize("name", TRAIN_PLOTS)
def test_train_plots_are_written(train_run: tuple[Path, dict[str, Any]], name: str) -> None:
    assert_nontrivial_png(train_run[0] / name)


def test_train_prediction_grid_marks_right_green_and_wrong_red(
    train_run: tuple[Path, dict[str, Any]],
) -> None:
    # After one short epoch about a fifth of the 40 digits shown are wrong: both colours appear.
    image = pixels(train_run[0] / "predictions.png")
    assert count_colour(image, GREEN) > 100
    assert count_colour(image, RED) > 100


def test_no_plots_skips_them(tmp_path: Path) -> None:
    train.main(["--limit", "300", "--epochs", "1", "--no-plots", "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "metrics.json"]


def test_same_seed_gives_the_same_numbers_bit_for_bit(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        metrics = train.main(
            ["--limit", "600", "--epochs", "2", "--no-plots", "--out", str(tmp_path / name)]
        )
        runs.append((without_times(metrics["epochs"]), trained_params(tmp_path / name)))
    (history_a, params_a), (history_b, params_b) = runs
    assert history_a == history_b
    for name in params_a:
        np.testing.assert_array_equal(params_a[name], params_b[name])


def test_another_seed_gives_other_numbers(tmp_path: Path) -> None:
    args = ["--limit", "600", "--epochs", "1", "--no-plots"]
    train.main([*args, "--out", str(tmp_path / "a")])
    train.main([*args, "--seed", "1", "--out", str(tmp_path / "b")])
    assert not np.array_equal(
        trained_params(tmp_path / "a")["W1"], trained_params(tmp_path / "b")["W1"]
    )


def test_resuming_gives_the_same_result_as_not_stopping(tmp_path: Path) -> None:
    args = ["--limit", "600", "--no-plots"]
    straight = train.main([*args, "--epochs", "3", "--out", str(tmp_path / "straight")])
    train.main([*args, "--epochs", "1", "--out", str(tmp_path / "stopped")])
    resumed = train.main(
        [
            "--resume", str(tmp_path / "stopped" / train.CHECKPOINT),
            "--epochs", "3", "--no-plots", "--out", str(tmp_path / "resumed"),
        ]
    )  # fmt: skip
    assert without_times(resumed["epochs"]) == without_times(straight["epochs"])
    assert [h["epoch"] for h in resumed["epochs"]] == [1, 2, 3]
    a, b = trained_params(tmp_path / "straight"), trained_params(tmp_path / "resumed")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_resuming_keeps_the_recipe(tmp_path: Path) -> None:
    train.main(["--limit", "300", "--epochs", "2", "--no-plots", "--out", str(tmp_path)])
    path = str(tmp_path / train.CHECKPOINT)
    with pytest.raises(SystemExit, match=r"--lr 0.1 differs from the checkpoint's 0.003"):
        train.main(["--resume", path, "--lr", "0.1", "--epochs", "3", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--epochs 1 is fewer than the 2 epochs"):
        train.main(["--resume", path, "--epochs", "1", "--out", str(tmp_path)])


def test_bad_options_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    for option, value in [("--epochs", "0"), ("--batch-size", "-1"), ("--limit", "0")]:
        with pytest.raises(SystemExit):
            train.main([option, value])
        assert f"{option} must be at least 1, got {value}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--lr", "0"])
    assert "--lr must be positive" in capsys.readouterr().err


def test_resuming_from_a_bad_checkpoint_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.npz does not exist"):
        train.main(["--resume", str(tmp_path / "missing.npz")])
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"corrupt\.npz: not a readable \.npz file"):
        train.main(["--resume", str(corrupt)])
    small = tmp_path / "small.npz"
    checkpoint.save(small, {**model.zeros_params(), "W1": np.zeros((784, 64), np.float32)})
    with pytest.raises(CheckpointError, match=r"'params/W1' has shape \(784, 64\), expected"):
        train.main(["--resume", str(small)])


def test_random_shifts_move_each_image_within_the_frame() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((50, 784)).astype(np.float32)
    shifted = train.random_shifts(x, 1, rng).reshape(50, 28, 28)
    images = x.reshape(50, 28, 28)
    moves = set()
    for image, moved in zip(images, shifted, strict=True):
        padded = np.pad(image, 1)  # find the one offset that explains the shifted image
        (found,) = [
            (dy, dx)
            for dy in range(3)
            for dx in range(3)
            if np.array_equal(moved, padded[2 - dy : 30 - dy, 2 - dx : 30 - dx])
        ]
        moves.add(found)
    assert len(moves) == 9, "all nine offsets in [-1, 1]^2 occur among 50 images"
    assert shifted.dtype == np.float32


# --- tutorial.py --------------------------------------------------------------------------------


def test_hand_derived_backprop_equals_tg_gradients() -> None:
    rng = np.random.default_rng(0)
    params = tutorial.init_params()
    X = rng.random((64, 784))
    Y = np.eye(10)[rng.integers(0, 10, 64)]
    hand_loss, hand = tutorial.loss_and_gradients_by_hand(params, X, Y)
    auto_loss, auto = tutorial.loss_and_gradients_by_tg(params, X, Y)
    # Both compute the same float64 sums in nearly the same order; the only difference is
    # where the 1/m is applied, which moves each result by a few ulps (~1e-16 relative).
    np.testing.assert_allclose(auto_loss, hand_loss, rtol=1e-14)
    for name in params:
        scale = np.max(np.abs(hand[name]))
        np.testing.assert_allclose(auto[name], hand[name], rtol=0, atol=1e-13 * scale)


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("tutorial")
    return out, tutorial.main(["--iterations", "5", "--out", str(out)])


def test_tutorial_runs_agree_and_report(tutorial_run: tuple[Path, dict[str, Any]]) -> None:
    out, results = tutorial_run
    assert json.loads((out / "results.json").read_text()) == results
    assert results["iterations"] == 5
    assert results["reported_test_accuracy"] == 0.9747
    # Five steps from the same start with gradients equal to a few ulps: weights of size ~0.03
    # agree to ~1e-16 each step; 1e-12 leaves room while catching any real divergence.
    assert max(results["max_abs_weight_difference"].values()) < 1e-12
    assert results["test_accuracy_hand"] == results["test_accuracy_tg"]
    assert 0.2 < results["test_accuracy_hand"] < 0.9  # five steps: learning, far from done


@pytest.mark.parametrize("name", TUTORIAL_PLOTS)
def test_tutorial_plots_are_written(tutorial_run: tuple[Path, dict[str, Any]], name: str) -> None:
    assert_nontrivial_png(tutorial_run[0] / name)


def test_tutorial_rejects_a_nonpositive_iteration_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tutorial.main(["--iterations", "0"])
    assert "--iterations must be at least 1" in capsys.readouterr().err
