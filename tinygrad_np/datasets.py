"""Read IDX files and load MNIST and Fashion-MNIST from them, checked against known MD5s.

The IDX format: two zero bytes, a type code, the number of dimensions ``ndim``, then ``ndim``
big-endian uint32 sizes, then exactly ``prod(sizes)`` big-endian items.  Files may be gzipped.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib
import math
import os
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FASHION_MNIST_MIRRORS",
    "MNIST_MIRRORS",
    "DatasetError",
    "DatasetNotFoundError",
    "fashion_mnist",
    "mnist",
    "read_idx",
]

U8 = npt.NDArray[np.uint8]

IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The four files of MNIST and Fashion-MNIST, in the order mnist() returns them.
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# MD5 of the decompressed files, in FILES order.
MNIST_MD5 = (
    "6bbc9ace898e44ae57da46a324031adb",
    "a25bea736e30d166cdddb491f175f624",
    "2646ac647ad5339dbf082846283269ea",
    "27ae3e4e09519cfbb04c329615203637",
)
# Computed from the files of Debian's dataset-fashion-mnist (0.0~git20200523.55506a9-1, dpkg
# --verify clean); the same values other loaders publish.  Debian re-gzipped the files, so the
# .gz MD5s in upstream's README do not match them, but the decompressed bytes do.
FASHION_MNIST_MD5 = (
    "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "9018921c3c673c538a1fc5bad174d6f9",
    "8181f5470baa50b63fa0f6fddb340f0a",
    "15d484375f8d13e6eb1aabb0c3f46965",
)
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

ENV_VAR = "TINYGRAD_NP_DATA"
REPO_DATA = Path(__file__).resolve().parent.parent / "data"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # apt: dataset-fashion-mnist


class DatasetError(ValueError):
    """A dataset file is malformed, inconsistent or fails its checksum."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset could not be found in any place looked at, nor downloaded."""


def _gunzip(data: bytes, name: Path | str) -> bytes:
    """Return ``data`` decompressed if it starts with the gzip magic, else unchanged."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{name}: corrupted or truncated gzip data ({e})") from e


def _parse_idx(data: bytes, path: Path) -> npt.NDArray[Any]:
    """Parse the bytes of an IDX file; ``path`` is only used in error messages."""
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DatasetError(
            f"{path}: not an IDX file (magic {data[:4].hex()!r} does not start with 0000)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X} {t.name}" for c, t in IDX_TYPES.items())
        raise DatasetError(f"{path}: unsupported IDX type code 0x{code:02X} (known: {known})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{path}: header needs {header} bytes for {ndim} dims, file has {len(data)}"
        )
    shape = tuple(int.from_bytes(data[i : i + 4], "big") for i in range(4, header, 4))
    dtype = IDX_TYPES[code]
    expected = dtype.itemsize * math.prod(shape)
    if len(data) - header != expected:
        raise DatasetError(
            f"{path}: header says shape {shape} of {dtype.name} = {expected} payload bytes, "
            f"but {len(data) - header} follow the {header}-byte header"
        )
    flat = np.frombuffer(data, dtype=dtype, offset=header)
    return flat.astype(dtype.newbyteorder("=")).reshape(shape)  # native byte order, writable copy


def read_idx(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read an IDX file, gzipped or raw, into an array of native byte order.

    Raises ``DatasetError`` naming the file if it is not a well-formed IDX file.
    """
    p = Path(path)
    return _parse_idx(_gunzip(p.read_bytes(), p), p)


def mnist(path: str | os.PathLike[str] | None = None) -> tuple[U8, U8, U8, U8]:
    """Return MNIST as uint8 ``(x_train, y_train, x_test, y_test)``.

    Shapes are (60000, 28, 28), (60000,), (10000, 28, 28), (10000,); labels are 0-9.  The four
    files (standard names, gzipped or raw) are read from ``path`` if given, else from
    ``$TINYGRAD_NP_DATA/mnist`` if that variable is set; otherwise from the first of the
    repository's ``data/mnist``, then ``$XDG_CACHE_HOME/tinygrad_np/mnist`` (default
    ``~/.cache/...``) that holds all four, else they are downloaded into that cache.  The MD5 of
    each decompressed file is checked.  Raises ``DatasetError`` for bad files and
    ``DatasetNotFoundError`` listing every place and mirror tried.
    """
    return _load("MNIST", "mnist", MNIST_MD5, MNIST_MIRRORS, (), path)


def fashion_mnist(path: str | os.PathLike[str] | None = None) -> tuple[U8, U8, U8, U8]:
    """Return Fashion-MNIST exactly like ``mnist``, with ``fashion-mnist`` in place of ``mnist``
    in the directory names, and Debian's ``/usr/share/datasets/fashion-mnist`` (package
    dataset-fashion-mnist) looked in after the repository's directory."""
    return _load(
        "Fashion-MNIST",
        "fashion-mnist",
        FASHION_MNIST_MD5,
        FASHION_MNIST_MIRRORS,
        (DEBIAN_FASHION_MNIST,),
        path,
    )


def _cache_dir(dirname: str) -> Path:
    """``$XDG_CACHE_HOME/tinygrad_np/<dirname>``, or under ``~/.cache`` when that is unset."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tinygrad_np" / dirname


def _find(directory: Path) -> list[Path] | str:
    """The four files in ``directory`` (raw preferred over ``.gz``), or why they are not there."""
    if not directory.is_dir():
        return "no such directory"
    found: list[Path] = []
    missing: list[str] = []
    for name in FILES:
        hits = [p for p in (directory / name, directory / f"{name}.gz") if p.is_file()]
        if hits:
            found.append(hits[0])
        else:
            missing.append(f"{name}[.gz]")
    return "missing " + ", ".join(missing) if missing else found


def _load(
    title: str,
    dirname: str,
    md5s: tuple[str, ...],
    mirrors: tuple[str, ...],
    system_dirs: tuple[Path, ...],
    path: str | os.PathLike[str] | None,
) -> tuple[U8, U8, U8, U8]:
    """Find, read and check one dataset as described in ``mnist``.

    An explicit place (``path``, else the environment variable) is the only one looked in.
    """
    env = os.environ.get(ENV_VAR)
    cache = _cache_dir(dirname)
    if path is not None:
        places = [(Path(path), "path argument")]
    elif env:
        places = [(Path(env) / dirname, f"${ENV_VAR}/{dirname}")]
    else:
        places = [(REPO_DATA / dirname, "repository data")]
        places += [(d, "system package") for d in system_dirs]
        places += [(cache, "user cache")]
    tried = []
    for directory, label in places:
        files = _find(directory)
        if isinstance(files, list):
            return _check(files, md5s)
        tried.append(f"  {directory} ({label}): {files}")
    failures = []
    if path is None and not env:
        failures = _download_all(cache, mirrors, md5s)
        files = _find(cache)
        if isinstance(files, list):
            return _check(files, md5s)
    lines = [f"{title} not found. Looked in:", *tried]
    if path is not None or env:
        lines += ["  (an explicit path argument or $TINYGRAD_NP_DATA is the only place looked in)"]
    if failures:
        lines += [f"Download into {cache} failed:", *(f"  {f}" for f in failures)]
    lines += [
        f"Supply the files {', '.join(FILES)} (each gzipped as NAME.gz, or raw) by one of:",
        f"  - the path argument: {dirname.replace('-', '_')}(path='DIR')",
        f"  - the environment variable {ENV_VAR}=ROOT, with the files in ROOT/{dirname}",
        f"  - putting them in the user cache {cache}",
    ]
    raise DatasetNotFoundError("\n".join(lines))


def _check(files: list[Path], md5s: tuple[str, ...]) -> tuple[U8, U8, U8, U8]:
    """Read the four files, check their shapes, labels and MD5s, and return the arrays."""
    raw = [_gunzip(f.read_bytes(), f) for f in files]
    arrays = [_parse_idx(data, f) for data, f in zip(raw, files, strict=True)]
    for i in (0, 2):
        (x_path, y_path), (x, y) = files[i : i + 2], arrays[i : i + 2]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DatasetError(
                f"{x_path}: expected uint8 images (N, 28, 28), got {x.dtype} {x.shape}"
            )
        if y.dtype != np.uint8 or y.ndim != 1:
            raise DatasetError(f"{y_path}: expected uint8 labels (N,), got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DatasetError(f"{x_path} holds {len(x)} images but {y_path} {len(y)} labels")
        if len(y) and y.max() > 9:
            raise DatasetError(f"{y_path}: labels must be 0-9, found {y.max()}")
    for data, f, expected in zip(raw, files, md5s, strict=True):
        _check_md5(data, expected, f)
    return arrays[0], arrays[1], arrays[2], arrays[3]


def _check_md5(data: bytes, expected: str, path: Path | str) -> None:
    """Raise ``DatasetError`` unless the MD5 of ``data`` is ``expected``."""
    actual = hashlib.md5(data).hexdigest()
    if actual != expected:
        raise DatasetError(
            f"{path}: MD5 of decompressed data is {actual}, expected {expected} "
            "(corrupted, or a different file under this name)"
        )


def _download_all(cache: Path, mirrors: tuple[str, ...], md5s: tuple[str, ...]) -> list[str]:
    """Download into ``cache`` each file it lacks; return why it failed (empty on success)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create {cache}: {e}"]
    for name, md5 in zip(FILES, md5s, strict=True):
        if (cache / name).is_file() or (cache / f"{name}.gz").is_file():
            continue
        failures: list[str] = []
        for mirror in mirrors:
            url = f"{mirror}{name}.gz"
            try:
                _download(url, cache / f"{name}.gz", md5)
                break
            except DatasetError as e:  # names the URL already
                failures.append(str(e))
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, ...
                failures.append(f"{url}: {e}")
        else:
            return failures or [f"{name}.gz: no mirrors to download from"]
    return []


def _download(url: str, dest: Path, md5: str) -> None:
    """Fetch ``url`` to ``dest`` atomically, after checking the MD5 of its decompressed bytes."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            length = response.headers.get("Content-Length")
            bar = _Progress(int(length) if length else None, dest.name)
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
            bar.close()
        _check_md5(_gunzip(tmp.read_bytes(), url), md5, url)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


class _Progress:
    """A byte-count progress bar: tqdm when importable, else a line rewritten on stderr."""

    def __init__(self, total: int | None, label: str) -> None:
        self.total, self.label, self.done, self.shown = total, label, 0, 0
        try:
            self.tqdm: Any = importlib.import_module("tqdm").tqdm(
                total=total, desc=label, unit="B", unit_scale=True
            )
        except ImportError:
            self.tqdm = None

    def update(self, n: int) -> None:
        self.done += n
        if self.tqdm is not None:
            self.tqdm.update(n)
        elif self.done - self.shown >= 1 << 20 or self.done == self.total:
            self.shown = self.done
            of = f" of {self.total / 1e6:.1f}" if self.total else ""
            print(
                f"\rdownloading {self.label}: {self.done / 1e6:.1f}{of} MB", end="", file=sys.stderr
            )

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
        else:
            print(file=sys.stderr)
