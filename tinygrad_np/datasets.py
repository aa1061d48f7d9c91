"""Read IDX files and load MNIST and Fashion-MNIST from them, checked against known MD5s.

The IDX format: two zero bytes, a type code, the number of dimensions ``ndim``, then ``ndim``
big-endian uint32 sizes, then exactly ``prod(sizes)`` big-endian items.  Files may be gzipped.

Nothing read from a file or the network is trusted to be small: a gzipped file is decompressed
only as far as its header declares (at most ``MAX_IDX_BYTES``), and a download must finish within
``DOWNLOAD_DEADLINE`` seconds, hold at most ``MAX_DOWNLOAD_BYTES`` and come over https.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib
import io
import math
import os
import sys
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_np.files import remove_stale_temporaries, temporary_path

__all__ = [
    "DOWNLOAD_DEADLINE",
    "FASHION_MNIST_MIRRORS",
    "MAX_DOWNLOAD_BYTES",
    "MAX_IDX_BYTES",
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
)
# Zalando's bucket through S3's REST endpoint: its website endpoint (the address upstream's
# README gives) serves plain http only.
FASHION_MNIST_MIRRORS = ("https://fashion-mnist.s3.eu-central-1.amazonaws.com/",)
# file:// is a local copy, so no one on the network can read or alter it.
DOWNLOAD_SCHEMES = ("https", "file")

# The most payload bytes an IDX header may declare.  The largest IDX files in use are a few
# hundred MB (EMNIST ByClass training images: 697,932 x 28 x 28 = 547 MB; MNIST's are 47 MB), so
# 2 GiB reads all of them, while a corrupt or crafted header (three sizes of 2**32 - 1) is refused
# before anything is allocated.  Raise it to read larger files.
MAX_IDX_BYTES = 2**31
# Per file.  The largest file fetched is 26.4 MB (Fashion-MNIST's gzipped training images):
# 120 s is enough at 220 kB/s; a slower or stalled link gets an error saying how to supply the
# files instead of a download that never ends.
DOWNLOAD_DEADLINE = 120.0
# The most seconds one socket operation may wait (never more than what is left of the deadline).
SOCKET_TIMEOUT = 30.0
# Five times the largest file fetched, so a mirror sending endless data cannot fill the disk.
MAX_DOWNLOAD_BYTES = 2**27
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"

ENV_VAR = "TINYGRAD_NP_DATA"
REPO_DATA = Path(__file__).resolve().parent.parent / "data"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # apt: dataset-fashion-mnist


class DatasetError(ValueError):
    """A dataset file is malformed, inconsistent or fails its checksum."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset could not be found in any place looked at, nor downloaded."""


def read_idx(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read an IDX file, gzipped or raw, into an array of native byte order.

    Raises ``DatasetError`` naming the file if it is not a well-formed IDX file, or declares
    more than ``MAX_IDX_BYTES`` of data.
    """
    p = Path(path)
    return _read_idx(p, p)[0]


def _read_idx(path: Path, name: Path | str) -> tuple[npt.NDArray[Any], str]:
    """The array in the IDX file ``path`` and the MD5 of its decompressed bytes.

    ``name`` (the path, or the URL a download came from) is what error messages call the file.
    """
    with open(path, "rb") as file:
        gzipped = file.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        file.seek(0)
        stream = gzip.GzipFile(fileobj=file) if gzipped else file
        with stream:
            try:
                return _parse_idx(stream, name)
            except (gzip.BadGzipFile, EOFError, zlib.error) as e:
                raise DatasetError(f"{name}: corrupted or truncated gzip data ({e})") from e


def _parse_idx(stream: io.BufferedIOBase, name: Path | str) -> tuple[npt.NDArray[Any], str]:
    """Read an IDX file from ``stream``: the header first, then no more than it declares.

    A gzip bomb is stopped after one chunk past the declared size, never decompressed whole.
    """
    digest = hashlib.md5()

    def read(n: int) -> bytes:
        data = stream.read(n)
        digest.update(data)
        return data

    magic = read(4)
    if len(magic) < 4 or magic[:2] != b"\x00\x00":
        raise DatasetError(
            f"{name}: not an IDX file (magic {magic.hex()!r} does not start with 0000)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X} {t.name}" for c, t in IDX_TYPES.items())
        raise DatasetError(f"{name}: unsupported IDX type code 0x{code:02X} (known: {known})")
    header = 4 + 4 * ndim
    sizes = read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DatasetError(
            f"{name}: header needs {header} bytes for {ndim} dims, file has {4 + len(sizes)}"
        )
    shape = tuple(int.from_bytes(sizes[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = IDX_TYPES[code]
    expected = dtype.itemsize * math.prod(shape)
    declared = f"{name}: header says shape {shape} of {dtype.name} = {expected} payload bytes"
    if expected > MAX_IDX_BYTES:
        raise DatasetError(
            f"{declared}, more than the limit of {MAX_IDX_BYTES} (datasets.MAX_IDX_BYTES)"
        )
    try:
        payload = bytearray()
        while len(payload) < expected and (chunk := read(min(CHUNK, expected - len(payload)))):
            payload += chunk
        # Also reads a gzip stream to its end, where its CRC is checked.
        extra = read(CHUNK)
        if len(payload) < expected or extra:
            at_least = "at least " if len(extra) == CHUNK else ""
            raise DatasetError(
                f"{declared}, but {at_least}{len(payload) + len(extra)} follow "
                f"the {header}-byte header"
            )
        flat = np.frombuffer(payload, dtype=dtype)  # writable: it shares the bytearray
        array = flat.astype(dtype.newbyteorder("="), copy=False).reshape(shape)
    except MemoryError:
        raise DatasetError(f"{declared}: not enough memory to read them") from None
    return array, digest.hexdigest()


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
    arrays, digests = zip(*(_read_idx(f, f) for f in files), strict=True)
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
    for actual, f, expected in zip(digests, files, md5s, strict=True):
        _check_md5(actual, expected, f)
    return arrays[0], arrays[1], arrays[2], arrays[3]


def _check_md5(actual: str, expected: str, path: Path | str) -> None:
    """Raise ``DatasetError`` unless the MD5 ``actual`` is ``expected``."""
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
    """Fetch ``url`` to ``dest`` atomically, after checking the MD5 of its decompressed bytes.

    Only ``DOWNLOAD_SCHEMES`` are fetched.  The transfer must end within ``DOWNLOAD_DEADLINE``
    seconds and ``MAX_DOWNLOAD_BYTES``; whatever fails, no partial file is left behind.
    """
    if urllib.parse.urlsplit(url).scheme not in DOWNLOAD_SCHEMES:
        raise DatasetError(f"{url}: refused, only {_schemes()} URLs are downloaded from")
    remove_stale_temporaries(dest, "part")
    tmp = temporary_path(dest, "part")
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    try:
        with (
            open(tmp, "xb") as out,
            _urlopen(url, min(SOCKET_TIMEOUT, DOWNLOAD_DEADLINE)) as response,
        ):
            _copy(response, out, url, deadline, dest.name)
        _check_md5(_read_idx(tmp, url)[1], md5, url)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _copy(response: Any, out: io.BufferedWriter, url: str, deadline: float, label: str) -> None:
    """Copy ``response`` to ``out`` until its end, the deadline or ``MAX_DOWNLOAD_BYTES``."""
    length = response.headers.get("Content-Length")
    bar = _Progress(int(length) if length else None, label)
    received = 0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatasetError(
                    f"{url}: not finished within {DOWNLOAD_DEADLINE:g} s "
                    f"(datasets.DOWNLOAD_DEADLINE), {received} bytes received"
                )
            _limit_socket_timeout(response, min(SOCKET_TIMEOUT, remaining))
            try:
                chunk = response.read1(CHUNK)  # one network read, so the deadline is seen
            except TimeoutError:
                if time.monotonic() < deadline:
                    raise
                continue  # report the deadline
            if not chunk:
                return
            received += len(chunk)
            if received > MAX_DOWNLOAD_BYTES:
                raise DatasetError(
                    f"{url}: more than {MAX_DOWNLOAD_BYTES} bytes "
                    "(datasets.MAX_DOWNLOAD_BYTES), far more than any dataset file"
                )
            out.write(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()


def _limit_socket_timeout(response: Any, seconds: float) -> None:
    """Make the socket under an http.client response wait at most ``seconds`` per operation.

    urlopen's timeout applies to each read, not the whole transfer.  These are private
    attributes of http.client's response; a file:// response has no socket and is left alone.
    """
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _schemes() -> str:
    return " or ".join(f"{s}://" for s in DOWNLOAD_SCHEMES)


class _AllowedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a scheme in ``DOWNLOAD_SCHEMES``: never from https to http."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in DOWNLOAD_SCHEMES:
            fp.close()
            raise DatasetError(
                f"{req.full_url}: refused a redirect to {newurl}, not an {_schemes()} URL"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_AllowedRedirects)


def _urlopen(url: str, timeout: float) -> Any:
    return _OPENER.open(url, timeout=timeout)


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
