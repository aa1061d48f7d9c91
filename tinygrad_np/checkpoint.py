"""Checkpoints: parameters, optimizer state and metadata in one ``.npz`` file.

Layout of the file (a plain NumPy ``.npz``, readable without this module):

* ``params/<path>``: one array per parameter leaf, e.g. ``params/W1`` or
  ``params/layers/0/W`` (dict keys and list indices joined by ``/``);
* ``opt/<path>``: one array per optimizer-state leaf, e.g. ``opt/step``, ``opt/m/W1``;
* ``__metadata__``: the metadata dict as UTF-8 JSON in a uint8 array;
* ``__structure__``: the two trees' shapes (dicts, lists, tuples) as UTF-8 JSON,
  so a checkpoint can be loaded without a template.

Nothing is pickled: files are written with plain arrays and read with
``allow_pickle=False``. Writes are atomic: the file is written under a
temporary name in the same directory, then renamed over ``path``, so a crash
mid-write leaves the previous checkpoint intact.

``load(path, like_params=..., like_opt_state=...)`` checks the file against
templates (trees of arrays, or of anything with ``shape`` and ``dtype``) and
names the file and the entry at fault: missing, unexpected, wrong shape, wrong
dtype.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinygrad_np.tree import TreeDef, tree_flatten, tree_paths, tree_unflatten

__all__ = ["Checkpoint", "CheckpointError", "load", "save"]

PARAMS, OPT = "params", "opt"
METADATA_KEY, STRUCTURE_KEY = "__metadata__", "__structure__"
FORMAT = "tinygrad_np.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or does not match what was expected."""


class Checkpoint(NamedTuple):
    """What :func:`load` returns. ``opt_state`` is ``None`` if none was saved."""

    params: Any
    opt_state: Any
    metadata: dict[str, Any]


# --- saving ---------------------------------------------------------------------------------


def save(
    path: str | os.PathLike[str],
    params: Any,
    opt_state: Any = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``params`` (and ``opt_state``, ``metadata``) to ``path`` atomically.

    ``metadata`` must be JSON-serialisable (e.g. epoch, config, RNG state). Dict
    keys in the trees must be strings without ``/``. Returns the path written.
    """
    path = Path(path)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise TypeError(
            f"checkpoint {path}: metadata must be a dict, got {type(metadata).__name__}"
        )
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    structure: dict[str, Any] = {PARAMS: _encode_structure(params, PARAMS, path)}
    arrays.update(_flatten(params, PARAMS, path))
    if opt_state is not None:
        structure[OPT] = _encode_structure(opt_state, OPT, path)
        arrays.update(_flatten(opt_state, OPT, path))
    try:
        metadata_json = json.dumps(metadata, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint {path}: metadata is not JSON-serialisable: {e}") from None
    arrays[METADATA_KEY] = _json_bytes(metadata_json)
    arrays[STRUCTURE_KEY] = _json_bytes(json.dumps({"format": FORMAT, **structure}))
    _write_atomically(path, arrays)
    return path


def _json_bytes(text: str) -> np.ndarray[Any, Any]:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _write_atomically(path: Path, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
    # A fresh name in the same directory (so os.replace is a rename on one file system);
    # "x" mode creates it exclusively, with the usual permissions (unlike mkstemp's 0600).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _key(prefix: str, tree_path: tuple[Any, ...]) -> str:
    return "/".join([prefix, *map(str, tree_path)])


def _flatten(tree: Any, prefix: str, file: Path) -> dict[str, np.ndarray[Any, Any]]:
    leaves, _ = tree_flatten(tree)
    out = {}
    for tree_path, leaf in zip(tree_paths(tree), leaves, strict=True):
        key = _key(prefix, tree_path)
        array = np.asarray(leaf)
        if array.dtype.hasobject:
            raise TypeError(
                f"checkpoint {file}: {key} holds a {type(leaf).__name__}, which would need "
                "pickling; only numeric, bool and string arrays can be saved"
            )
        out[key] = array
    return out


def _encode_structure(tree: Any, prefix: str, file: Path) -> Any:
    """The tree's containers as JSON: ``null`` for a leaf, ``{"list": [...]}`` for a list."""
    _, treedef = tree_flatten(tree)
    return _encode(treedef, tree, prefix, file)


def _encode(treedef: TreeDef, tree: Any, key: str, file: Path) -> Any:
    if treedef.kind == "leaf":
        return None
    if treedef.kind == "dict":
        out = {}
        for k, child_def in zip(treedef.keys, treedef.children, strict=True):
            if not isinstance(k, str) or "/" in k or not k:
                raise TypeError(
                    f"checkpoint {file}: dict key {k!r} under {key!r} must be a non-empty "
                    "string without '/' (it becomes part of an .npz entry name)"
                )
            out[k] = _encode(child_def, tree[k], f"{key}/{k}", file)
        return {"dict": out}
    items = [_encode(c, tree[i], f"{key}/{i}", file) for i, c in enumerate(treedef.children)]
    return {treedef.kind: items}


def _decode(encoded: Any) -> TreeDef:
    if encoded is None:
        return TreeDef("leaf", (), ())
    ((kind, content),) = encoded.items()
    if kind == "dict":
        return TreeDef("dict", tuple(content), tuple(_decode(c) for c in content.values()))
    if kind in ("list", "tuple"):
        return TreeDef(kind, (), tuple(_decode(c) for c in content))
    raise ValueError(f"unknown container {kind!r}")


def _keys_of(treedef: TreeDef, prefix: str) -> list[str]:
    """The npz keys of a tree's leaves, in flatten order."""
    if treedef.kind == "leaf":
        return [prefix]
    names = treedef.keys if treedef.kind == "dict" else range(len(treedef.children))
    return [
        key
        for name, child in zip(names, treedef.children, strict=True)
        for key in _keys_of(child, f"{prefix}/{name}")
    ]


# --- loading --------------------------------------------------------------------------------


def load(
    path: str | os.PathLike[str],
    like_params: Any = None,
    like_opt_state: Any = None,
) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    With ``like_params`` (and ``like_opt_state``), the file must hold exactly
    those trees' leaves, with the same shapes and dtypes, and the result has the
    templates' structure; otherwise :class:`CheckpointError` names the entry at
    fault. Without templates the saved structure is rebuilt as is.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    arrays = _read_npz(path)
    for key in (METADATA_KEY, STRUCTURE_KEY):
        if key not in arrays:
            raise CheckpointError(
                f"checkpoint {path}: no {key} entry (not a file written by tinygrad_np.checkpoint)"
            )
    metadata = _read_json(path, arrays.pop(METADATA_KEY), METADATA_KEY)
    structure = _read_json(path, arrays.pop(STRUCTURE_KEY), STRUCTURE_KEY)
    if (
        not isinstance(structure, dict)
        or structure.get("format") != FORMAT
        or PARAMS not in structure
    ):
        raise CheckpointError(f"checkpoint {path}: {STRUCTURE_KEY} is not in the {FORMAT} format")
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint {path}: {METADATA_KEY} must hold a JSON object")

    params = _rebuild(path, arrays, structure, PARAMS, like_params)
    if like_opt_state is not None and OPT not in structure:
        raise CheckpointError(
            f"checkpoint {path}: no optimizer state was saved, but one was expected"
        )
    opt_state = None
    if OPT in structure:
        opt_state = _rebuild(path, arrays, structure, OPT, like_opt_state)
    if arrays:
        raise CheckpointError(
            f"checkpoint {path}: unexpected entry {sorted(arrays)[0]!r}"
            + ("" if len(arrays) == 1 else f" (and {len(arrays) - 1} more)")
            + " not described by the checkpoint's structure"
        )
    return Checkpoint(params, opt_state, metadata)


def _read_npz(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    key = None
    try:
        # np.load takes any file that is neither zip nor .npy for a pickle and says so:
        # misleading for a corrupt checkpoint, so look at the magic bytes first.
        with open(path, "rb") as file:
            magic = file.read(6)
        if magic[:4] != b"PK\x03\x04" and magic != b"\x93NUMPY":
            raise CheckpointError(f"checkpoint {path}: not an .npz file (no zip header)")
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(f"checkpoint {path}: a single .npy array, not an .npz file")
        with loaded as npz:
            arrays = {}
            for key in npz.files:
                arrays[key] = npz[key]
            return arrays
    except CheckpointError:
        raise
    except ValueError as e:
        if key is not None and "allow_pickle" in str(e):
            raise CheckpointError(
                f"checkpoint {path}: entry {key!r} holds pickled Python objects, which are "
                "never loaded"
            ) from None
        raise CheckpointError(f"checkpoint {path}: not a readable .npz file ({e})") from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        where = "" if key is None else f" (entry {key!r})"
        raise CheckpointError(
            f"checkpoint {path}: not a readable .npz file{where}: {type(e).__name__}: {e}"
        ) from e


def _read_json(path: Path, array: np.ndarray[Any, Any], key: str) -> Any:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise CheckpointError(f"checkpoint {path}: {key} must be a 1-d uint8 array of JSON")
    try:
        return json.loads(array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path}: {key} is not valid JSON ({e})") from None


def _rebuild(
    path: Path,
    arrays: dict[str, np.ndarray[Any, Any]],
    structure: dict[str, Any],
    prefix: str,
    like: Any,
) -> Any:
    """Take the ``prefix`` tree's arrays out of ``arrays``, checked against ``like``."""
    try:
        saved_def = _decode(structure[prefix])
    except (ValueError, AttributeError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: {STRUCTURE_KEY} is malformed ({e})") from None
    saved_keys = _keys_of(saved_def, prefix)
    if like is None:
        treedef, expected = saved_def, None
        keys = saved_keys
    else:
        like_leaves, treedef = tree_flatten(like)
        keys = [_key(prefix, p) for p in tree_paths(like)]
        expected = like_leaves
        for key in saved_keys:
            if key not in keys:
                raise CheckpointError(
                    f"checkpoint {path}: unexpected entry {key!r} (not in the expected "
                    f"{'parameters' if prefix == PARAMS else 'optimizer state'})"
                )
    leaves = []
    for i, key in enumerate(keys):
        if key not in arrays:
            want = "" if expected is None else f" (expected {_describe(expected[i])})"
            raise CheckpointError(f"checkpoint {path}: missing entry {key!r}{want}")
        array = arrays.pop(key)
        if expected is not None:
            shape, dtype = _spec(expected[i])
            if array.shape != shape:
                raise CheckpointError(
                    f"checkpoint {path}: entry {key!r} has shape {array.shape}, expected {shape}"
                )
            if array.dtype != dtype:
                raise CheckpointError(
                    f"checkpoint {path}: entry {key!r} has dtype {array.dtype}, expected {dtype}"
                )
        leaves.append(array)
    return tree_unflatten(treedef, leaves)


def _spec(leaf: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """A template leaf's shape and dtype (arrays, or anything with ``shape`` and ``dtype``)."""
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        return tuple(leaf.shape), np.dtype(leaf.dtype)
    array = np.asarray(leaf)
    return array.shape, array.dtype


def _describe(leaf: Any) -> str:
    shape, dtype = _spec(leaf)
    return f"{dtype} {shape}"
