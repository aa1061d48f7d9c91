"""train.py and predict.py as a user runs them: separate processes, Ctrl-C, several runs.

A full run (the whole training set for the recipe's epochs) becomes the latest model; a trial
run never replaces it; Ctrl-C stops a run with one line saying how to resume it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import predict, runs, train
from tinygrad_np import checkpoint
from tinygrad_np.datasets import mnist

REPOSITORY = Path(__file__).resolve().parents[1]
TRAIN, PREDICT = REPOSITORY / "experiments" / "train.py", REPOSITORY / "experiments" / "predict.py"


def command(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, argv)], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def assert_no_traceback(process: subprocess.CompletedProcess[str] | str) -> None:
    text = process if isinstance(process, str) else process.stdout + process.stderr
    assert "Traceback" not in text, text


def deliver_sigint() -> None:
    """In the child before it starts: SIGINT handled by default and not blocked, as a user's
    shell starts a command, whatever the test runner's worker process passed down (the
    test failed under pytest-xdist in CI: the run never saw the signal)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_after_the_first_epoch_prints_how_to_resume_and_resuming_finishes(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"  # not the repository: paths must not depend on it
    elsewhere.mkdir()
    # Epochs long enough (0.1 s each, jitted) that the run cannot finish its 40 before the
    # signal arrives: with 600 digits (0.01 s each) it once did, on a loaded machine.
    argv = [TRAIN, "--limit", "6000", "--epochs", "40", "--no-plots", "--out", tmp_path / "runs"]
    process = subprocess.Popen(
        [sys.executable, *map(str, argv)],
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=deliver_sigint,
    )
    assert process.stdout is not None
    printed = []
    for line in process.stdout:
        printed.append(line)
        if line.startswith("epoch  1/40:"):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=600)
    assert process.returncode == 130, err
    assert_no_traceback(out + err)
    # One line, naming the epoch, the last checkpoint and the command that resumes.
    (line,) = err.splitlines()
    match = re.fullmatch(
        r"Interrupted (?:in|after) epoch (\d+)/40; the last checkpoint is (\S+) "
        r"\(after epoch (\d+)\); resume with: (.+)",
        line,
    )
    assert match, line
    epoch, last, saved_epoch, resume = match.groups()
    assert int(saved_epoch) >= 1 and int(epoch) in (int(saved_epoch), int(saved_epoch) + 1)
    saved = checkpoint.load(elsewhere / last)
    assert len(saved.metadata["history"]) == int(saved_epoch)
    # Every epoch whose summary was printed is in the checkpoint (saved before the print).
    summaries = [line for line in printed + out.splitlines() if line.startswith("epoch ")]
    assert len(summaries) <= int(saved_epoch)

    words = shlex.split(resume)
    # The script's path as it can be typed from here (absolute: the repository is not below).
    assert words[0] in ("python", sys.executable)
    assert words[1:] == [str(TRAIN), "--resume", last, "--no-plots"]
    resumed = command(*words[1:], cwd=elsewhere)  # the command as printed, from where it was
    assert resumed.returncode == 0, resumed.stderr
    assert_no_traceback(resumed)
    final = checkpoint.load(elsewhere / last)
    assert [h["epoch"] for h in final.metadata["history"]] == list(range(1, 41))


def test_a_trial_run_after_a_full_run_leaves_predict_on_the_full_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A recipe of one epoch makes a full run cheap: the whole training set, once.
    monkeypatch.setitem(train.DEFAULTS, "epochs", 1)
    runs_dir = tmp_path / "runs"
    full = train.run_training(["--no-plots", "--out", str(runs_dir)])
    assert full.full_run and full.became_latest
    assert (runs_dir / runs.LATEST).read_text() == full.run.name + "\n"
    assert "is now the latest model" in capsys.readouterr().out

    monkeypatch.undo()  # the trial runs as a user would: its own process, the real recipe
    trial = command(TRAIN, "--limit", "500", "--epochs", "1", "--no-plots", "--out", runs_dir,
                    cwd=tmp_path)  # fmt: skip
    assert trial.returncode == 0, trial.stderr
    assert_no_traceback(trial)
    assert f"so the latest model is still {full.run.name}" in trial.stdout
    assert (runs_dir / runs.LATEST).read_text() == full.run.name + "\n"
    assert len([p for p in runs_dir.iterdir() if p.is_dir()]) == 2

    digit = mnist()[2][0]
    picture = tmp_path / "digit.png"
    Image.fromarray(255 - digit).resize((112, 112)).save(picture)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    predicted = command(PREDICT, picture, "--checkpoint", runs_dir, cwd=elsewhere)
    assert predicted.returncode == 0, predicted.stderr
    accuracy = full.metrics["final_test_accuracy"]
    assert predicted.stderr == (
        f"Model: {full.run / runs.CHECKPOINT} (784-128-10 MLP, full run of 1 epoch, "
        f"test accuracy {accuracy:.2%})\n"
    )
    assert re.fullmatch(rf"{re.escape(str(picture))}: \d \(.*\n", predicted.stdout)


def test_predict_without_a_full_run_names_the_trial_runs_and_how_to_train(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    trial = command(TRAIN, "--limit", "300", "--epochs", "1", "--no-plots", "--out", runs_dir,
                    cwd=tmp_path)  # fmt: skip
    assert trial.returncode == 0 and "there is no full run yet" in trial.stdout
    picture = tmp_path / "digit.png"
    Image.fromarray(np.pad(np.full((10, 4), 255, np.uint8), 9)).save(picture)
    predicted = command(PREDICT, picture, "--checkpoint", runs_dir, cwd=tmp_path)
    assert predicted.returncode == 2 and predicted.stdout == ""
    (line,) = predicted.stderr.splitlines()
    assert "no full training run has completed in runs (it holds trial or unfinished runs" in line
    assert "python experiments/train.py" in line
    assert_no_traceback(predicted)


def fake_run(runs_dir: Path, name: str) -> Path:
    run = runs_dir / name
    run.mkdir(parents=True)
    (run / runs.CHECKPOINT).write_bytes(b"")
    return run


def test_predict_prefers_the_first_model_of_its_preference_that_has_a_full_run(
    tmp_path: Path,
) -> None:
    preference = ("cnn", "mlp")
    mlp_1, cnn_1, mlp_2 = (fake_run(tmp_path, n) for n in ("mlp-1", "cnn-1", "mlp-2"))
    runs.mark_latest(mlp_1, "mlp")
    assert runs.preferred_checkpoint(tmp_path, preference) == mlp_1 / runs.CHECKPOINT
    runs.mark_latest(cnn_1, "cnn")
    runs.mark_latest(mlp_2, "mlp")  # a newer MLP does not displace the CNN
    assert runs.latest_run(tmp_path) == mlp_2
    assert runs.latest_run(tmp_path, "mlp") == mlp_2
    assert runs.preferred_checkpoint(tmp_path, preference) == cnn_1 / runs.CHECKPOINT
    assert runs.preferred_checkpoint(tmp_path, ("mlp",)) == mlp_2 / runs.CHECKPOINT
    # A runs directory from before the per-model pointers: the latest run of any model.
    (tmp_path / f"{runs.LATEST}-cnn").unlink()
    (tmp_path / f"{runs.LATEST}-mlp").unlink()
    assert runs.preferred_checkpoint(tmp_path, preference) == mlp_2 / runs.CHECKPOINT


def test_predict_by_default_loads_the_preferred_model_of_the_default_runs_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "DEFAULT_RUNS", tmp_path)
    with pytest.raises(predict.CheckpointLoadError, match="no full training run has completed"):
        predict.load_model()
    run = fake_run(tmp_path, "cnn-1")
    runs.mark_latest(run, "cnn")
    # The (empty) checkpoint that was chosen is the one the error names.
    with pytest.raises(predict.CheckpointLoadError, match="cnn-1"):
        predict.load_model()
