"""The experiments end to end, on small subsets: outputs, plots, determinism, resuming."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import tinygrad_np as tg
from experiments import model, predict, runs, train, tutorial, tutorial_unchanged
from tinygrad_np import checkpoint
from tinygrad_np.jit import Jitted

REPOSITORY = Path(__file__).resolve().parents[1]

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


def trained_params(run: Path) -> dict[str, Any]:
    return checkpoint.load(run / runs.CHECKPOINT, like_params=model.zeros_params()).params


def train_run(*argv: str) -> train.Result:
    return train.run_training(list(argv))


# --- train.py ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> train.Result:
    return train_run(
        "--limit", "2000", "--epochs", "1", "--out", str(tmp_path_factory.mktemp("runs"))
    )


def test_train_writes_metrics_with_history_versions_and_config(trial: train.Result) -> None:
    metrics = json.loads((trial.run / "metrics.json").read_text())
    assert metrics == trial.metrics
    assert set(metrics) == {
        "run",
        "full_run",
        "config",
        "seed",
        "versions",
        "epochs",
        "final_test_accuracy",
        "wall_time_s",
    }
    assert metrics["run"] == trial.run.name and metrics["full_run"] is False
    assert set(metrics["versions"]) == {"python", "numpy", "tinygrad_np"}
    assert metrics["versions"]["tinygrad_np"] == tg.__version__
    config = metrics["config"]
    assert config["limit"] == 2000 and config["epochs"] == 1 and config["model"] == "mlp"
    (epoch,) = metrics["epochs"]
    assert set(epoch) == {
        "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
        "epoch_time_s", "elapsed_s",
    }  # fmt: skip
    assert epoch["epoch"] == 1 and epoch["epoch_time_s"] > 0
    # One epoch on 2000 digits is far from converged but far better than chance (10%).
    assert 0.5 < epoch["test_accuracy"] == metrics["final_test_accuracy"] < 1


def test_train_saves_a_checkpoint_of_the_model(trial: train.Result) -> None:
    saved = checkpoint.load(trial.run / runs.CHECKPOINT, like_params=model.zeros_params())
    assert saved.metadata["history"] == trial.metrics["epochs"]
    assert saved.opt_state["count"] == 16  # ceil(2000 / 128) Adam updates
    assert saved.metadata["config"] == trial.metrics["config"]
    assert saved.metadata["full_run"] is False


@pytest.mark.parametrize("name", TRAIN_PLOTS)
def test_train_plots_are_written(trial: train.Result, name: str) -> None:
    assert_nontrivial_png(trial.run / name)


def test_train_prediction_grid_marks_right_green_and_wrong_red(trial: train.Result) -> None:
    # After one short epoch about a fifth of the 40 digits shown are wrong: both colours appear.
    image = pixels(trial.run / "predictions.png")
    assert count_colour(image, GREEN) > 100
    assert count_colour(image, RED) > 100


def test_each_run_writes_a_directory_of_its_own(trial: train.Result) -> None:
    runs_dir = trial.run.parent
    second = train_run("--limit", "300", "--epochs", "1", "--no-plots", "--out", str(runs_dir))
    assert second.run.parent == runs_dir and second.run != trial.run
    assert sorted(p.name for p in second.run.iterdir()) == ["checkpoint.npz", "metrics.json"]
    assert (trial.run / "training_curves.png").is_file()  # the first run's plots stay its own
    assert not (runs_dir / runs.LATEST).exists()  # trial runs never become the latest model


def test_same_seed_gives_the_same_numbers_bit_for_bit(tmp_path: Path) -> None:
    results = [
        train_run("--limit", "600", "--epochs", "2", "--no-plots", "--out", str(tmp_path))
        for _ in range(2)
    ]
    (a, b) = results
    assert without_times(a.metrics["epochs"]) == without_times(b.metrics["epochs"])
    params_a, params_b = trained_params(a.run), trained_params(b.run)
    for name in params_a:
        np.testing.assert_array_equal(params_a[name], params_b[name])


def test_another_seed_gives_other_numbers(tmp_path: Path) -> None:
    args = ["--limit", "600", "--epochs", "1", "--no-plots", "--out", str(tmp_path)]
    a = train_run(*args)
    b = train_run(*args, "--seed", "1")
    assert not np.array_equal(trained_params(a.run)["W1"], trained_params(b.run)["W1"])


def test_resuming_gives_the_same_result_as_not_stopping(tmp_path: Path) -> None:
    args = ["--limit", "600", "--no-plots", "--out", str(tmp_path)]
    straight = train_run(*args, "--epochs", "3")
    stopped = train_run(*args, "--epochs", "1")
    resumed = train_run(
        "--resume", str(stopped.run / runs.CHECKPOINT), "--epochs", "3", "--no-plots"
    )
    assert resumed.run == stopped.run  # a resumed run continues in its own directory
    assert without_times(resumed.metrics["epochs"]) == without_times(straight.metrics["epochs"])
    assert [h["epoch"] for h in resumed.metrics["epochs"]] == [1, 2, 3]
    a, b = trained_params(straight.run), trained_params(resumed.run)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    # A run directory names its checkpoint too.
    more = train_run("--resume", str(stopped.run), "--epochs", "4", "--no-plots")
    assert [h["epoch"] for h in more.metrics["epochs"]] == [1, 2, 3, 4]


def test_resuming_keeps_the_recipe(tmp_path: Path) -> None:
    run = train_run("--limit", "300", "--epochs", "2", "--no-plots", "--out", str(tmp_path)).run
    path = str(run / runs.CHECKPOINT)
    with pytest.raises(train.UsageError, match=r"--lr 0.1 differs from the checkpoint's 0.003"):
        train_run("--resume", path, "--lr", "0.1", "--epochs", "3")
    with pytest.raises(train.UsageError, match=r"--epochs 1 is fewer than the 2 epochs"):
        train_run("--resume", path, "--epochs", "1")
    with pytest.raises(train.UsageError, match=r"has already trained its 2 epochs"):
        train_run("--resume", path)


# Each bad command line: the one line the command prints (after "error: ").
BAD_COMMAND_LINES = {
    "epochs": (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    "batch": (["--batch-size", "-1"], "--batch-size must be at least 1, got -1"),
    "limit": (["--limit", "0"], "--limit must be at least 1, got 0"),
    "limit-high": (["--limit", "60001"], "--limit must be at most 60000"),
    "seed": (["--seed", "-3"], "--seed must be at least 0, got -3"),
    "lr-zero": (["--lr", "0"], "--lr must be a positive finite number, got 0.0"),
    "lr-inf": (["--lr", "inf"], "--lr must be a positive finite number, got inf"),
    "lr-overflow": (["--lr", "1e999"], "--lr must be a positive finite number, got inf"),
    "lr-nan": (["--lr", "nan"], "--lr must be a positive finite number, got nan"),
    "not-a-number": (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    "model": (["--model", "cnn9"], "argument --model: invalid choice: 'cnn9'"),
    "out-and-resume": (["--out", "x", "--resume", "y"], "--out cannot be combined with --resume"),
}


@pytest.mark.parametrize("case", BAD_COMMAND_LINES)
def test_a_bad_command_line_is_one_error_line_and_status_2(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, message = BAD_COMMAND_LINES[case]
    assert train.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_resuming_from_a_bad_checkpoint_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    foreign = tmp_path / "foreign.npz"
    checkpoint.save(foreign, model.zeros_params())  # parameters only: not train.py's
    small = tmp_path / "small.npz"
    checkpoint.save(
        small,
        {**model.zeros_params(), "W1": np.zeros((784, 64), np.float32)},
        metadata={"config": {"model": "mlp"}, "rng_state": {}, "history": []},
    )
    cases = {
        tmp_path / "missing.npz": r"missing\.npz does not exist",
        corrupt: r"corrupt\.npz: not a readable \.npz file",
        foreign: r"foreign\.npz was not written by train\.py",
        small: r"'params/W1' has shape \(784, 64\), expected",
        tmp_path: r"no full training run has completed in",
    }
    for path, problem in cases.items():
        assert train.main(["--resume", str(path)]) == 2
        err = capsys.readouterr().err
        assert re.match(rf"error: cannot resume: .*{problem}", err), err
        assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["file", "below-a-file"])
def test_a_bad_runs_directory_is_named(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    if kind == "file":
        out, problem = a_file, "is a file, not a directory for training runs"
    else:
        out, problem = a_file / "runs", "cannot create a run directory in"
    assert train.main(["--limit", "100", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1


def test_the_default_runs_directory_is_the_repositorys_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    asked = []

    def refuse(directory: Path) -> Path:
        asked.append(directory)
        raise runs.RunError("stop here")

    monkeypatch.setattr(runs, "new_run_directory", refuse)
    with pytest.raises(train.UsageError, match="stop here"):
        train_run("--limit", "100", "--epochs", "1")
    assert asked == [REPOSITORY / "runs" / "mnist"]
    assert predict.parse_args(["x.png"]).checkpoint is None  # the preferred model of:
    looked_in = []

    def preferred(directory: Path, models: Any) -> Path:
        looked_in.append(directory)
        raise runs.RunError("stop here")

    monkeypatch.setattr(runs, "preferred_checkpoint", preferred)
    with pytest.raises(predict.CheckpointLoadError, match="stop here"):
        predict.load_model(None)
    assert looked_in == [REPOSITORY / "runs" / "mnist"]


def test_random_shifts_move_each_image_within_the_frame() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((50, 28, 28)).astype(np.float32)
    shifted = train.random_shifts(images, 1, rng)
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
    assert shifted.dtype == np.float32 and shifted.shape == (50, 28, 28)


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
def tutorial_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("tutorial")
    with pytest.MonkeyPatch.context() as patch:
        printed: list[str] = []
        patch.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
        results = tutorial.run_tutorial(["--iterations", "6", "--out", str(out)])
    return out, results, "\n".join(printed)


def test_tutorial_runs_agree_and_report(tutorial_run: tuple[Path, dict[str, Any], str]) -> None:
    out, results, printed = tutorial_run
    assert json.loads((out / "results.json").read_text()) == results
    assert results["iterations"] == 6
    assert results["reported_test_accuracy"] == 0.9747
    # Six steps from the same start with gradients equal to a few ulps: weights of size ~0.03
    # agree to ~1e-16 each step; 1e-12 leaves room while catching any real divergence.
    assert max(results["max_abs_weight_difference"].values()) < 1e-12
    assert results["test_accuracy_hand"] == results["test_accuracy_tg"]
    assert 0.2 < results["test_accuracy_hand"] < 0.9  # six steps: learning, far from done
    # The tutorial's 97.47% is for its 2000 iterations: a shorter run does not print it.
    assert "Test accuracy, tg.value_and_grad:" in printed
    assert "97.47" not in printed and "reports" not in printed


def test_the_tutorial_states_its_pace(tutorial_run: tuple[Path, dict[str, Any], str]) -> None:
    assert re.search(r"\d+\.\d\d s per iteration: about \d+ min for this run's 6 iterations",
                     tutorial_run[2])  # fmt: skip


@pytest.mark.parametrize("name", TUTORIAL_PLOTS)
def test_tutorial_plots_are_written(
    tutorial_run: tuple[Path, dict[str, Any], str], name: str
) -> None:
    assert_nontrivial_png(tutorial_run[0] / name)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--iterations", "0"], "--iterations must be at least 1, got 0"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--out", "README.md/x"], "cannot create the output directory README.md/x"),
    ],
)
def test_tutorial_rejects_a_bad_command_line_in_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPOSITORY)
    assert tutorial.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_tutorial_unchanged_rejects_a_bad_batch(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        tutorial_unchanged.main(["--batch", "-5"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "--batch must lie in [1, 60000]" in err and "Traceback" not in err


def test_the_recipes_training_step_is_jitted_for_the_mlp_and_bitwise_the_eager_one() -> None:
    rng = np.random.default_rng(0)
    params = model.init_params(rng)
    config = {**train.DEFAULTS, "model": "mlp"}
    opt = train.make_optimizer(config, steps_per_epoch=3)
    jitted, eager = train.make_train_step(model, opt), train.make_train_step(model, opt, jit=False)
    assert isinstance(jitted, Jitted) and not isinstance(eager, Jitted)
    traced = (params, opt.init(params))
    plain = (params, opt.init(params))
    for n in (128, 128, 96, 128):  # the last batch of an epoch is shorter: a second trace
        x, labels = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
        *traced, loss, logits = jitted(*traced, x, labels, None)
        *plain, eager_loss, eager_logits = eager(*plain, x, labels, None)
        assert loss == eager_loss and np.array_equal(logits, eager_logits)
        for got, want in zip(tg.tree_leaves(traced), tg.tree_leaves(plain), strict=True):
            assert got.dtype == want.dtype and np.array_equal(got, want)
    assert jitted.traces == 2
