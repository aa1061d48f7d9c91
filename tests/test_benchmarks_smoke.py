"""Smoke test of the benchmark harness (benchmarks/): tiny, offline, no timing assertions.

Needs only NumPy: torch, jax and autograd are not used here (the harness skips contenders whose
framework is missing). Results go to pytest's tmp_path, never into the repository.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common, contenders  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def test_harness_runs_and_writes_json(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--quick",
        "--config=a,c",
        "--contenders=numpy,tinygrad_np,tinygrad_np_ops",
        "--data=synthetic",
        "--n-train=512",
        "--n-test=128",
        "--repeats=1",
        "--settle=0",
        "--wait-quiet=0",
        "--no-blas-study",
        f"--out={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("numpy", "tinygrad_np", "tinygrad_np_ops"):
        assert f"| {name} |" in proc.stdout

    latest = tmp_path / "latest.json"
    stamped = [p for p in tmp_path.glob("*.json") if p.name != "latest.json"]
    assert latest.exists() and len(stamped) == 1
    res = json.loads(latest.read_text())
    assert res == json.loads(stamped[0].read_text())

    assert res["schema"] == "tinygrad_np-benchmarks/1"
    for key in ("cpu_model", "cpu_count", "python", "versions", "numpy_blas"):
        assert key in res["machine"]
    assert set(res["configs"]) == {"a", "c"}
    for cfg in ("a", "c"):
        block = res["configs"][cfg]
        assert block["unit"] == ("s/epoch" if cfg == "a" else "s/iter")
        assert set(block["results"]) == {"numpy", "tinygrad_np", "tinygrad_np_ops"}
        for r in block["results"].values():
            assert r["status"] == "ok", r.get("reason")
            assert r["n_samples"] >= 1 and len(r["samples"]) == r["n_samples"]
            assert set(r["time"]) >= {"median", "min", "max"}
            assert r["time"]["min"] <= r["time"]["median"] <= r["time"]["max"]
            assert 0 <= r["other_share"]["median"]
            assert "extra_mib" in r["memory"]
            assert 0 <= r["warmup"]["accuracy"] <= 1
        ratio = block["results"]["numpy"]["ratio_vs_numpy"]
        assert ratio == pytest.approx(1.0)
        # same data, init and batch order: the same model after the warm-up epoch
        accs = {k: r["warmup"]["accuracy"] for k, r in block["results"].items()}
        assert accs["numpy"] == accs["tinygrad_np"] == accs["tinygrad_np_ops"]
    assert res["micro"]["status"] == "ok"
    assert res["micro"]["us_per_op"]["tg_grad_total"] > 0
    assert not (ROOT / "benchmarks" / "results" / stamped[0].name).exists()


@pytest.mark.parametrize("engine", ["tinygrad_np", "tinygrad_np_ops"])
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-10), ("float32", 2e-5)])
def test_tinygrad_matches_hand_written_numpy(engine: str, dtype: str, rtol: float) -> None:
    data = common.prepare(dtype, "synthetic", n_train=512, n_test=64)
    built = {
        name: contenders.get(engine if name == "tinygrad_np" else name)(
            data.x_train, data.y_train, common.init_params(dtype), common.LR
        )
        for name in ("numpy", "tinygrad_np")
    }
    perm = np.random.default_rng(common.SHUFFLE_SEED).permutation(512)
    schedule = [*common.batch_slices(perm, 128)[:3], None]  # 3 mini-batches, 1 full batch
    for idx in schedule:
        losses = {}
        for name, c in built.items():
            c.step(idx)
            losses[name] = c.last_loss()
        assert np.isfinite(losses["numpy"])
        assert losses["tinygrad_np"] == pytest.approx(losses["numpy"], rel=rtol)
    p_np, p_tg = built["numpy"].params(), built["tinygrad_np"].params()
    for k in p_np:
        assert p_tg[k].dtype == np.dtype(dtype)
        np.testing.assert_allclose(p_tg[k], p_np[k], rtol=50 * rtol, atol=1e-7)


def test_gemm_floor_has_the_step_shapes() -> None:
    data = common.prepare("float32", "synthetic", n_train=300, n_test=10)
    floor = contenders.get("floor")(
        data.x_train, data.y_train, common.init_params("float32"), common.LR
    )
    floor.step(np.arange(44))  # a partial batch
    assert floor.dw1.shape == (784, 128) and floor.dw1.dtype == np.float32  # type: ignore[attr-defined]


def test_missing_framework_is_a_skip_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = contenders.get("torch")
    monkeypatch.setattr(cls, "requires", ("no_such_module_for_the_smoke_test",))
    reason = contenders.missing_requirement("torch")
    assert reason is not None and "not installed" in reason
    assert contenders.missing_requirement("numpy") is None
    assert "unknown" in (contenders.missing_requirement("mxnet") or "")


def test_mnist_reader_matches_the_bundled_files() -> None:
    if not (common.MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip("bundled MNIST files not present")
    labels = common._read_idx(common.MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8 and labels.max() == 9


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_overhead_replay_is_the_engines_array_work_exactly(dtype: str) -> None:
    from benchmarks.overhead import EngineReplay, measure

    data = common.prepare(dtype, "synthetic", n_train=512, n_test=64)
    engine = contenders.get("tinygrad_np")(
        data.x_train, data.y_train, common.init_params(dtype), common.LR
    )
    replay = EngineReplay(data.x_train, data.y_train, common.init_params(dtype), common.LR)
    perm = np.random.default_rng(common.SHUFFLE_SEED).permutation(512)
    for idx in [*common.batch_slices(perm, 128)[:3], None]:
        engine.step(idx)
        replay.step(idx)
        assert replay.last_loss() == engine.last_loss()
    for k, p in replay.params().items():
        np.testing.assert_array_equal(p, engine.params()[k])  # the same calls: bit for bit
    times = measure(rounds=1, steps=2, source="synthetic")
    assert set(times) == {"numpy", "tinygrad_np", "replay"}
    assert all(len(t) == 1 and t[0] > 0 for t in times.values())


def test_cnn_benchmark_runs_and_writes_json(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "cnn.py"),
        "--contenders=tinygrad_np,tinygrad_np_jit",
        "--data=synthetic",
        "--n-train=256",
        "--n-test=128",
        "--repeats=1",
        "--extra-rounds=0",
        "--settle=0",
        "--wait-quiet=0",
        f"--out={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| epoch |" in proc.stdout and "| conv2 backward |" in proc.stdout
    assert "| jit / eager |" in proc.stdout
    res = json.loads((tmp_path / "latest-cnn.json").read_text())
    for name in ("tinygrad_np", "tinygrad_np_jit"):
        r = res["results"][name]
        assert r["status"] == "ok", r.get("reason")
        assert set(r["measurements"]) == {
            "epoch",
            "conv1 forward",
            "conv1 backward",
            "conv2 forward",
            "conv2 backward",
        }
        assert all(m["time"]["median"] > 0 for m in r["measurements"].values())
        assert r["memory"]["extra_mib"] is None or r["memory"]["extra_mib"] >= 0
        assert r["memory"]["tracemalloc_held_mib"] >= 0
        assert 0 <= r["warmup"]["accuracy"] <= 1
    # the jitted step keeps its planned arrays between steps; the eager one allocates anew
    memory = {name: res["results"][name]["memory"] for name in ("tinygrad_np", "tinygrad_np_jit")}
    assert memory["tinygrad_np_jit"]["tracemalloc_held_mib"] > 1
    assert memory["tinygrad_np"]["tracemalloc_held_mib"] < 1


def test_the_cnn_jit_contender_trains_the_eager_contenders_parameters_bit_for_bit() -> None:
    from benchmarks import cnn

    data = common.prepare("float32", "synthetic", n_train=256, n_test=64)
    x, y = data.x_train.reshape(-1, 1, 28, 28), data.y_train
    eager, jitted = (cnn.make(name, x, y) for name in ("tinygrad_np", "tinygrad_np_jit"))
    for batch in np.arange(256).reshape(4, 64)[[0, 2, 1, 3]]:
        eager.step(batch)
        jitted.step(batch)
        assert eager.loss == jitted.loss
    for k, p in eager.params().items():
        np.testing.assert_array_equal(p, jitted.params()[k])


def test_the_cnn_contenders_compute_the_same_network() -> None:
    pytest.importorskip("torch")
    from benchmarks import cnn

    data = common.prepare("float32", "synthetic", n_train=256, n_test=64)
    x, y = data.x_train.reshape(-1, 1, 28, 28), data.y_train
    ours, theirs = (cnn.make(name, x, y) for name in ("tinygrad_np", "torch"))
    x_test = data.x_test.reshape(-1, 1, 28, 28)
    # Same parameters, evaluation mode (no dropout): the same predictions.
    assert ours.accuracy(x_test, data.y_test) == theirs.accuracy(x_test, data.y_test)
    for name, (x_shape, w_shape) in {n: (a, b) for n, a, b in cnn.LAYERS}.items():
        rng = np.random.default_rng(0)
        args = (
            rng.standard_normal((2, *x_shape[1:])).astype(np.float32),
            rng.standard_normal(w_shape).astype(np.float32),
            rng.standard_normal(w_shape[0]).astype(np.float32),
        )
        (our_forward, our_backward), (their_forward, their_backward) = (
            c.layer(*args) for c in (ours, theirs)
        )
        # float32 sums of up to 800 (forward) and 1152 (weight gradient) products of
        # standard normals, in two summation orders: they differ by ~1e-6 of the sums'
        # magnitudes (~30), well inside these bounds, while a wrong result is off by O(1).
        np.testing.assert_allclose(our_forward(), their_forward().numpy(), rtol=1e-4, atol=1e-4)
        for mine, its in zip(our_backward(), their_backward(), strict=True):
            np.testing.assert_allclose(mine, its.numpy(), rtol=1e-4, atol=1e-3, err_msg=name)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeats", "0"], "--repeats must be at least 1, got 0"),
        (["--threads", "one"], "--threads must be a comma list of counts"),
        (["--max-other", "1.5"], r"--max-other must lie in \[0, 1\]"),
        (["--settle", "inf"], "--settle must be a finite number of seconds"),
        (["--out", "README.md/results"], "cannot create the results directory"),
    ],
)
def test_run_refuses_bad_options_with_a_usage_error(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import run

    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit:
        run.parse_args(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_jit_contender_trains_bitwise_as_the_eager_one(dtype: str) -> None:
    data = common.prepare(dtype, "synthetic", n_train=512, n_test=64)
    eager, jitted = (
        contenders.get(name)(data.x_train, data.y_train, common.init_params(dtype), common.LR)
        for name in ("tinygrad_np", "tinygrad_np_jit")
    )
    perm = np.random.default_rng(common.SHUFFLE_SEED).permutation(512)
    for idx in [*common.batch_slices(perm, 96)[:4], *common.batch_slices(perm, 128)[:2], None]:
        eager.step(idx)
        jitted.step(idx)
        assert eager.last_loss() == jitted.last_loss()
    for k, p in eager.params().items():
        assert np.array_equal(p, jitted.params()[k])
