"""Specification of tinygrad_np.checkpoint: atomic, pickle-free .npz checkpoints."""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import checkpoint, optim
from tinygrad_np.checkpoint import CheckpointError


def mlp_params(dtype: Any = np.float32) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "W1": rng.standard_normal((6, 4)).astype(dtype),
        "b1": np.zeros((1, 4), dtype),
        "W2": rng.standard_normal((4, 3)).astype(dtype),
        "b2": np.zeros((1, 3), dtype),
    }


def adam_state(params: dict[str, Any]) -> dict[str, Any]:
    opt = optim.adam(1e-3)
    grads = tg.tree_map(lambda p: np.ones_like(p), params)
    return opt.update(params, grads, opt.init(params))[1]


def assert_trees_equal(a: Any, b: Any) -> None:
    leaves_a, def_a = tg.tree_flatten(a)
    leaves_b, def_b = tg.tree_flatten(b)
    assert def_a == def_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    params = mlp_params()
    return checkpoint.save(tmp_path / "ckpt.npz", params, adam_state(params), {"epoch": 3})


# --- round trips ---------------------------------------------------------------------------


def test_round_trip_restores_params_optimizer_state_and_metadata(tmp_path: Path) -> None:
    params = mlp_params()
    state = adam_state(params)
    metadata = {"epoch": 3, "config": {"lr": 1e-3, "seed": 0}, "rng": {"state": 2**100 + 7}}
    path = checkpoint.save(tmp_path / "ckpt.npz", params, state, metadata)
    loaded = checkpoint.load(path, like_params=mlp_params(), like_opt_state=adam_state(params))
    assert_trees_equal(loaded.params, params)
    assert_trees_equal(loaded.opt_state, state)
    assert loaded.metadata == metadata  # big integers (RNG states) survive JSON exactly


def test_loading_without_templates_rebuilds_the_saved_structure(tmp_path: Path) -> None:
    params = {
        "layers": [{"W": np.ones((2, 2))}, {"W": np.zeros((2, 1))}],
        "pair": (np.ones(1), 2.5),
    }
    path = checkpoint.save(tmp_path / "nested.npz", params)
    loaded = checkpoint.load(path)
    assert isinstance(loaded.params["layers"], list) and isinstance(loaded.params["pair"], tuple)
    assert_trees_equal(loaded.params, tg.tree_map(np.asarray, params))
    assert loaded.opt_state is None
    assert loaded.metadata == {}


def test_file_is_a_plain_npz_keyed_by_tree_paths(saved: Path) -> None:
    with np.load(saved, allow_pickle=False) as npz:
        keys = set(npz.files)
        metadata = json.loads(npz["__metadata__"].tobytes())
        assert npz["__metadata__"].dtype == np.uint8
    assert {"params/W1", "params/b2", "opt/step", "opt/m/W1", "opt/v/b2"} <= keys
    assert metadata == {"epoch": 3}


def test_optimizer_state_round_trip_continues_training_identically(tmp_path: Path) -> None:
    params = mlp_params()
    grads = tg.tree_map(lambda p: np.full_like(p, 0.25), params)
    opt = optim.adam(1e-2)
    state = opt.init(params)
    params, state = opt.update(params, grads, state)
    path = checkpoint.save(tmp_path / "c.npz", params, state)
    loaded = checkpoint.load(path, like_params=params, like_opt_state=state)
    straight = opt.update(params, grads, state)
    resumed = opt.update(loaded.params, grads, loaded.opt_state)
    assert_trees_equal(resumed, straight)


def test_templates_may_be_shape_dtype_descriptions(saved: Path) -> None:
    class Spec:
        def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
            self.shape, self.dtype = shape, dtype

    like = {name: Spec(p.shape, p.dtype) for name, p in mlp_params().items()}
    assert checkpoint.load(saved, like_params=like).params["W1"].shape == (6, 4)


# --- atomic writes -----------------------------------------------------------------------------


def test_save_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"w": np.zeros(2)}, metadata={"epoch": 1})
    checkpoint.save(path, {"w": np.ones(2)}, metadata={"epoch": 2})
    assert os.listdir(tmp_path) == ["c.npz"]
    assert checkpoint.load(path).metadata == {"epoch": 2}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, "usual permissions, not 0600"


def test_a_failed_save_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"w": np.zeros(2)}, metadata={"epoch": 1})

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"w": np.ones(2)}, metadata={"epoch": 2})
    assert os.listdir(tmp_path) == ["c.npz"]
    assert checkpoint.load(path).metadata == {"epoch": 1}


# --- validation against templates -------------------------------------------------------------


def error(path: Path, **templates: Any) -> str:
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, **templates)
    message = str(info.value)
    assert str(path) in message, "every error names the file"
    return message


def test_missing_parameter_is_named(saved: Path) -> None:
    like = {**mlp_params(), "W3": np.zeros((3, 2), np.float32)}
    message = error(saved, like_params=like)
    assert "missing entry 'params/W3' (expected float32 (3, 2))" in message


def test_extra_parameter_is_named(saved: Path) -> None:
    like = mlp_params()
    del like["b2"]
    assert "unexpected entry 'params/b2'" in error(saved, like_params=like)


def test_wrong_shape_is_named(saved: Path) -> None:
    like = {**mlp_params(), "W1": np.zeros((784, 128), np.float32)}
    message = error(saved, like_params=like)
    assert "entry 'params/W1' has shape (6, 4), expected (784, 128)" in message


def test_wrong_dtype_is_named(saved: Path) -> None:
    message = error(saved, like_params=mlp_params(np.float64))
    assert re.search(r"entry 'params/W1' has dtype float32, expected float64", message)


def test_optimizer_state_is_validated_too(saved: Path) -> None:
    params = mlp_params()
    sgd_state = optim.sgd(0.1, momentum=0.9).init(params)
    message = error(saved, like_params=params, like_opt_state=sgd_state)
    assert "unexpected entry 'opt/m/W1'" in message


def test_expected_optimizer_state_must_be_present(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "p.npz", mlp_params())
    message = error(path, like_params=mlp_params(), like_opt_state=adam_state(mlp_params()))
    assert "no optimizer state was saved" in message


# --- unreadable files ----------------------------------------------------------------------------


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*nope\.npz does not exist"):
        checkpoint.load(tmp_path / "nope.npz")


def test_non_npz_file_is_reported_as_not_an_npz_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.npz"
    path.write_text("these are not arrays")
    message = error(path)
    assert "not an .npz file (no zip header)" in message
    assert "pickle" not in message  # what np.load alone would say, misleadingly


def test_truncated_file_is_reported_as_unreadable(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    assert "not a readable .npz file" in error(saved)


def test_single_npy_array_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "array.npy"
    np.save(path, np.zeros(3))
    assert "a single .npy array, not an .npz file" in error(path)


def test_npz_not_written_by_this_module_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "foreign.npz"
    np.savez(path, W1=np.zeros(3))
    assert "no __metadata__ entry" in error(path)


def test_pickled_objects_are_never_loaded(tmp_path: Path, saved: Path) -> None:
    # Smuggle an object array (which np.save pickles) into an otherwise valid checkpoint.
    with zipfile.ZipFile(saved, "a") as archive, archive.open("params/evil.npy", "w") as f:
        np.lib.format.write_array(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    assert "entry 'params/evil' holds pickled Python objects" in error(saved)


def test_entries_outside_the_saved_structure_are_rejected(tmp_path: Path, saved: Path) -> None:
    with zipfile.ZipFile(saved, "a") as archive, archive.open("params/extra.npy", "w") as f:
        np.lib.format.write_array(f, np.zeros(2))
    assert "unexpected entry 'params/extra'" in error(saved)


def test_corrupt_metadata_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    structure = {"format": checkpoint.FORMAT, "params": {"dict": {"w": None}}}
    np.savez(
        path,
        **{
            "params/w": np.zeros(2),
            "__metadata__": np.frombuffer(b"{not json", np.uint8),
            "__structure__": np.frombuffer(json.dumps(structure).encode(), np.uint8),
        },
    )
    assert "__metadata__ is not valid JSON" in error(path)


# --- what cannot be saved -------------------------------------------------------------------------


def test_unsaveable_trees_and_metadata_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match=r"dict key 'a/b' under 'params' must be a non-empty"):
        checkpoint.save(path, {"a/b": np.zeros(1)})
    with pytest.raises(TypeError, match=r"dict key 1 under 'opt/m'"):
        checkpoint.save(path, {"w": np.zeros(1)}, {"m": {1: np.zeros(1)}})
    with pytest.raises(TypeError, match=r"params/f holds a function, which would need pickling"):
        checkpoint.save(path, {"f": lambda: 0})
    with pytest.raises(TypeError, match="metadata is not JSON-serialisable"):
        checkpoint.save(path, {"w": np.zeros(1)}, metadata={"array": np.zeros(2)})
    assert not path.exists()
