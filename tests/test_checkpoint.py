"""Specification of tinygrad_np.checkpoint: atomic, pickle-free .npz checkpoints."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
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
    return opt.update(grads, opt.init(params), params)[1]


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
    assert {"params/W1", "params/b2", "opt/count", "opt/mu/W1", "opt/nu/b2"} <= keys
    assert metadata == {"epoch": 3}


def test_optimizer_state_round_trip_continues_training_identically(tmp_path: Path) -> None:
    params = mlp_params()
    grads = tg.tree_map(lambda p: np.full_like(p, 0.25), params)
    opt = optim.adam(1e-2)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optim.apply_updates(params, updates)
    path = checkpoint.save(tmp_path / "c.npz", params, state)
    loaded = checkpoint.load(path, like_params=params, like_opt_state=state)
    straight = opt.update(grads, state, params)
    resumed = opt.update(grads, loaded.opt_state, loaded.params)
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


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_save_removes_temporaries_left_by_dead_processes(tmp_path: Path, dead_pid: int) -> None:
    stale = tmp_path / f".c.npz.{dead_pid}.0123abcd.tmp"
    kept = [
        tmp_path / f".c.npz.{os.getpid()}.0123abcd.tmp",  # a save in progress
        tmp_path / f".c.npz.{dead_pid}.tmp",  # not a name save writes
        tmp_path / f".c.npz.{dead_pid}.0123abcd.tmp.bak",
        tmp_path / f".d.npz.{dead_pid}.0123abcd.tmp",  # another checkpoint's
    ]
    for path in (stale, *kept):
        path.write_bytes(b"partial")
    checkpoint.save(tmp_path / "c.npz", {"w": np.zeros(2)})
    assert sorted(os.listdir(tmp_path)) == sorted(["c.npz", *(p.name for p in kept)])


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
    assert "unexpected entry 'opt/mu/W1'" in message


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


# --- sizes are checked before anything is allocated ----------------------------------------------


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    out = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def replace_entry(path: Path, key: str, content: bytes) -> None:
    """Rewrite the .npz ``path`` with entry ``key`` holding the .npy bytes ``content``."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[f"{key}.npy"] = content
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_an_enormous_declared_shape_is_refused_before_loading(saved: Path) -> None:
    # 4 TiB of float32 declared by a few bytes: np.load would try to allocate it all.
    replace_entry(saved, "params/W1", npy_header((2**20, 2**20)) + bytes(96))
    with_template = error(saved, like_params=mlp_params())
    assert "entry 'params/W1' has shape (1048576, 1048576), expected (6, 4)" in with_template
    assert error(saved).endswith(
        "entry 'params/W1' declares shape (1048576, 1048576) float32, 4398046511104 bytes: "
        "over the limit of 8589934592 bytes of arrays per checkpoint "
        "(checkpoint.MAX_DATA_BYTES)"
    )


def test_an_entry_must_hold_exactly_the_data_its_header_declares(saved: Path) -> None:
    replace_entry(saved, "params/W1", npy_header((6, 4)) + bytes(8))
    assert error(saved, like_params=mlp_params()).endswith(
        "entry 'params/W1' declares shape (6, 4) float32, 96 bytes, but its zip member holds "
        "8 bytes of data"
    )
    replace_entry(saved, "params/W1", npy_header((6, 4)) + bytes(97))
    assert "96 bytes, but its zip member holds 97 bytes of data" in error(saved)


def test_the_limit_counts_the_data_of_every_entry(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = mlp_params()
    monkeypatch.setattr(checkpoint, "MAX_DATA_BYTES", 500)  # the file holds 800 bytes
    message = error(saved, like_params=params, like_opt_state=adam_state(params))
    # Metadata, structure, parameters and count come first; Adam's mu then takes it over.
    assert re.search(
        r"entry 'opt/mu/W1' declares shape \(6, 4\) float32, 96 bytes \(after \d+ bytes of "
        r"other entries\): over the limit of 500 bytes of arrays per checkpoint",
        message,
    )


def test_out_of_memory_is_a_checkpoint_error(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    with monkeypatch.context() as patch:
        patch.setattr(np.lib.format, "read_array", no_memory)
        assert re.search(
            r"entry '__metadata__' declares shape \(\d+,\) uint8, \d+ bytes: not enough "
            "memory to load it$",
            error(saved),
        )
    monkeypatch.setattr(checkpoint, "tree_unflatten", no_memory)
    assert error(saved).endswith(": not enough memory to load it")


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
