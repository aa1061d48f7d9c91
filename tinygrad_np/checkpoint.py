"""Checkpoints: parameters, optimizer state and metadata in one ``.npz`` file.

Layout of the file (a plain NumPy ``.npz``, readable without this module):

* ``params/<path>``: one array per parameter leaf, e.g. ``params/W1`` or
  ``params/layers/0/W`` (dict keys and list indices joined by ``/``);
* ``opt/<path>``: one array per optimizer-state leaf, e.g. ``opt/count``, ``opt/mu/W1``;
* ``__metadata__``: the metadata dict as UTF-8 JSON in a uint8 array;
* ``__structure__``: the two trees' shapes (dicts, lists, tuples) as UTF-8 JSON,
  so a checkpoint can be loaded without a template.

Nothing is pickled: files are written with plain arrays and read with
``allow_pickle=False``. Writes are atomic: the file is written under a
temporary name in the same directory, then renamed over ``path``, so a crash
mid-write leaves the previous checkpoint intact; the temporary files of saves
killed outright (``kill -9``) are removed by the next save to the same path.

``load(path, like_params=..., like_opt_state=...)`` checks the file against
templates (trees of arrays, or of anything with ``shape`` and ``dtype``) and
names the file and the entry at fault: missing, unexpected, wrong shape, wrong
dtype. Each entry's shape and dtype are read from its ``.npy`` header and
checked (against the template, and against ``MAX_DATA_BYTES``) before its data
is, so a corrupt or crafted file is an error, never a huge allocation.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinygrad_np.files import remove_stale_temporaries, temporary_path
from tinygrad_np.tree import TreeDef, tree_flatten, tree_paths, tree_unflatten

__all__ = ["MAX_DATA_BYTES", "Checkpoint", "CheckpointError", "load", "save"]

PARAMS, OPT = "params", "opt"
METADATA_KEY, STRUCTURE_KEY = "__metadata__", "__structure__"
FORMAT = "tinygrad_np.checkpoint/1"
# The most array data one checkpoint may hold.  Adam keeps two arrays per parameter, so 8 GiB is a
# 700-million-parameter float32 model with its optimizer state: far beyond what this NumPy engine
# trains (the MNIST MLP is 0.4 MB).  A larger declared size is a corrupt or crafted file; raise
# the limit to load a genuine one.
MAX_DATA_BYTES = 2**33


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
    remove_stale_temporaries(path, "tmp")
    temporary = temporary_path(path, "tmp")
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
    fault. Without templates the saved structure is rebuilt as is. A file
    declaring more than ``MAX_DATA_BYTES`` of arrays is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with _open_npz(path) as npz:
            return _load(path, npz, like_params, like_opt_state)
    except MemoryError:
        raise CheckpointError(f"checkpoint {path}: not enough memory to load it") from None


def _load(path: Path, npz: _Npz, like_params: Any, like_opt_state: Any) -> Checkpoint:
    for key in (METADATA_KEY, STRUCTURE_KEY):
        if key not in npz.headers:
            raise CheckpointError(
                f"checkpoint {path}: no {key} entry (not a file written by tinygrad_np.checkpoint)"
            )
    metadata = _read_json(path, npz.read(METADATA_KEY), METADATA_KEY)
    structure = _read_json(path, npz.read(STRUCTURE_KEY), STRUCTURE_KEY)
    if (
        not isinstance(structure, dict)
        or structure.get("format") != FORMAT
        or PARAMS not in structure
    ):
        raise CheckpointError(f"checkpoint {path}: {STRUCTURE_KEY} is not in the {FORMAT} format")
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint {path}: {METADATA_KEY} must hold a JSON object")

    params = _rebuild(path, npz, structure, PARAMS, like_params)
    if like_opt_state is not None and OPT not in structure:
        raise CheckpointError(
            f"checkpoint {path}: no optimizer state was saved, but one was expected"
        )
    opt_state = None
    if OPT in structure:
        opt_state = _rebuild(path, npz, structure, OPT, like_opt_state)
    if npz.headers:
        raise CheckpointError(
            f"checkpoint {path}: unexpected entry {sorted(npz.headers)[0]!r}"
            + ("" if len(npz.headers) == 1 else f" (and {len(npz.headers) - 1} more)")
            + " not described by the checkpoint's structure"
        )
    return Checkpoint(params, opt_state, metadata)


class _Header(NamedTuple):
    """What an entry's ``.npy`` header declares, and where in its zip member the data starts."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    nbytes: int
    offset: int


class _Npz:
    """An open ``.npz`` file: every entry's header is read at once, its data only by ``read``."""

    def __init__(self, path: Path, archive: zipfile.ZipFile) -> None:
        self.path, self.archive, self.loaded = path, archive, 0
        # np.savez names the member of entry "params/W1" "params/W1.npy".
        keys = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        self.headers = {key: self._header(key, info) for key, info in keys.items()}

    def _header(self, key: str, info: zipfile.ZipInfo) -> _Header:
        with _readable(self.path, key), self.archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise CheckpointError(
                    f"checkpoint {self.path}: entry {key!r} is in .npy format version "
                    f"{version[0]}.{version[1]}; only 1.0 and 2.0 are read"
                )
            offset = member.tell()
        if dtype.hasobject:
            raise CheckpointError(
                f"checkpoint {self.path}: entry {key!r} holds pickled Python objects, which are "
                "never loaded"
            )
        return _Header(info, shape, dtype, dtype.itemsize * math.prod(shape), offset)

    def read(self, key: str) -> np.ndarray[Any, Any]:
        """The array of entry ``key``, which is no longer in ``headers``."""
        header = self.headers.pop(key)
        entry = (
            f"checkpoint {self.path}: entry {key!r} declares shape {header.shape} {header.dtype}"
        )
        if header.nbytes > MAX_DATA_BYTES - self.loaded:
            alone = header.nbytes > MAX_DATA_BYTES
            others = "" if alone else f" (after {self.loaded} bytes of other entries)"
            raise CheckpointError(
                f"{entry}, {header.nbytes} bytes{others}: over the limit of {MAX_DATA_BYTES} "
                "bytes of arrays per checkpoint (checkpoint.MAX_DATA_BYTES)"
            )
        # Guards the member's uncompressed size too: the data read is exactly what was declared.
        held = header.info.file_size - header.offset
        if held != header.nbytes:
            raise CheckpointError(
                f"{entry}, {header.nbytes} bytes, but its zip member holds {held} bytes of data"
            )
        self.loaded += header.nbytes
        try:
            with _readable(self.path, key), self.archive.open(header.info) as member:
                return np.lib.format.read_array(member, allow_pickle=False)
        except MemoryError:
            raise CheckpointError(
                f"{entry}, {header.nbytes} bytes: not enough memory to load it"
            ) from None


@contextlib.contextmanager
def _open_npz(path: Path) -> Iterator[_Npz]:
    # np.load takes any file that is neither zip nor .npy for a pickle and says so:
    # misleading for a corrupt checkpoint, so look at the magic bytes first.
    with open(path, "rb") as file:
        magic = file.read(6)
    if magic == b"\x93NUMPY":
        raise CheckpointError(f"checkpoint {path}: a single .npy array, not an .npz file")
    if magic[:4] != b"PK\x03\x04":
        raise CheckpointError(f"checkpoint {path}: not an .npz file (no zip header)")
    with _readable(path, None):
        archive = zipfile.ZipFile(path)
    with archive:
        yield _Npz(path, archive)


@contextlib.contextmanager
def _readable(path: Path, key: str | None) -> Iterator[None]:
    """Turn the errors of reading a damaged zip or ``.npy`` into a ``CheckpointError``."""
    try:
        yield
    except CheckpointError:
        raise
    except (OSError, EOFError, ValueError, RuntimeError, zipfile.BadZipFile, zlib.error) as e:
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
    npz: _Npz,
    structure: dict[str, Any],
    prefix: str,
    like: Any,
) -> Any:
    """Read the ``prefix`` tree's arrays from ``npz``, their headers checked against ``like``."""
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
        if key not in npz.headers:
            want = "" if expected is None else f" (expected {_describe(expected[i])})"
            raise CheckpointError(f"checkpoint {path}: missing entry {key!r}{want}")
        header = npz.headers[key]
        if expected is not None:
            shape, dtype = _spec(expected[i])
            if header.shape != shape:
                raise CheckpointError(
                    f"checkpoint {path}: entry {key!r} has shape {header.shape}, expected {shape}"
                )
            if header.dtype != dtype:
                raise CheckpointError(
                    f"checkpoint {path}: entry {key!r} has dtype {header.dtype}, expected {dtype}"
                )
        leaves.append(npz.read(key))
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
