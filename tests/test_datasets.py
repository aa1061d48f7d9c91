"""Tests for tinygrad_np.datasets: the IDX reader, MNIST lookup, download and checks (offline)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import types
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_np import datasets
from tinygrad_np.datasets import DatasetError, DatasetNotFoundError, read_idx

NAMES = datasets.FILES
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
CODES |= {np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(
    a: np.ndarray, code: int | None = None, shape: tuple[int, ...] | None = None
) -> bytes:
    """IDX encoding of ``a``; ``code`` and ``shape`` override the header to make bad files."""
    code = CODES[a.dtype.type] if code is None else code
    shape = a.shape if shape is None else shape
    header = bytes([0, 0, code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def toy_set(n_train: int = 3, n_test: int = 2, seed: int = 0) -> list[bytes]:
    """Raw bytes of a tiny valid MNIST-shaped set, in FILES order."""
    rng = np.random.default_rng(seed)
    out = []
    for n in (n_train, n_test):
        out.append(idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)))
        out.append(idx_bytes(rng.integers(0, 10, n, dtype=np.uint8)))
    return out


def write_set(directory: Path, raws: list[bytes], gz: bool = True) -> None:
    for name, raw in zip(NAMES, raws, strict=False):  # a prefix of the set is allowed
        write(directory / (f"{name}.gz" if gz else name), raw, gz=gz)


def md5s(raws: list[bytes]) -> tuple[str, ...]:
    return tuple(hashlib.md5(r).hexdigest() for r in raws)


def fail_download(url: str, dest: Path, md5: str) -> None:
    raise AssertionError(f"unexpected download of {url}")


@pytest.fixture
def iso(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No environment variable, empty repository, Debian and cache dirs, and no mirrors."""
    monkeypatch.delenv("TINYGRAD_NP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "REPO_DATA", tmp_path / "repo")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ())
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", ())
    return tmp_path


@pytest.fixture
def toy(iso: Path, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """A toy set whose MD5s are the ones mnist() expects."""
    raws = toy_set()
    monkeypatch.setattr(datasets, "MNIST_MD5", md5s(raws))
    return raws


# --- read_idx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type(tmp_path: Path, dtype: Any, gz: bool) -> None:
    a = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    out = read_idx(write(tmp_path / "a.idx", idx_bytes(a), gz=gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, a)


def test_read_idx_one_dim_and_empty(tmp_path: Path) -> None:
    assert read_idx(write(tmp_path / "a", idx_bytes(np.arange(5, dtype=np.uint8)))).shape == (5,)
    empty = read_idx(write(tmp_path / "b", idx_bytes(np.zeros((0, 28, 28), np.uint8))))
    assert empty.shape == (0, 28, 28)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not an IDX file"),
        (b"\x00\x00", "not an IDX file"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
        (b"\x00\x01\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x05", "unsupported IDX type code 0x0A"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "header needs 16 bytes"),
        (idx_bytes(np.zeros(5, np.uint8))[:-1], "5 payload bytes, but 4 follow"),
        (idx_bytes(np.zeros(5, np.uint8)) + b"\x00", "5 payload bytes, but 6 follow"),
        (idx_bytes(np.zeros(3, np.int32), shape=(4,)), "16 payload bytes, but 12 follow"),
        (idx_bytes(np.zeros(1, np.uint8), shape=(2**32 - 1,) * 3), "payload bytes, more than"),
    ],
    ids=["empty", "short", "magic0", "magic1", "type", "header", "short", "long", "dims", "huge"],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_bad_files(tmp_path: Path, data: bytes, match: str, gz: bool) -> None:
    path = write(tmp_path / "bad.idx", data, gz=gz)
    with pytest.raises(DatasetError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_truncated_and_corrupted_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    corrupt = bytearray(packed)
    corrupt[len(packed) // 2] ^= 0xFF
    crc = bytearray(packed)
    crc[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    for name, data in [("cut", packed[: len(packed) // 2]), ("flip", corrupt), ("crc", crc)]:
        path = write(tmp_path / f"{name}.gz", bytes(data))
        with pytest.raises(DatasetError, match="corrupted or truncated gzip") as info:
            read_idx(path)
        assert str(path) in str(info.value)


def dataset_error_and_peak_memory(read):
    """The DatasetError ``read()`` raises, and the most memory Python held meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as info:
            read()
        return info, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_read_idx_stops_a_gzip_bomb_at_the_declared_size(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(10, np.uint8)) + bytes(50_000_000), 9))
    assert path.stat().st_size < 100_000
    info, peak = dataset_error_and_peak_memory(lambda: read_idx(path))
    message = str(info.value)
    assert str(path) in message
    assert "shape (10,) of uint8 = 10 payload bytes, but at least" in message
    # Reading stops one 1 MiB chunk past the declared size; gzip's buffers hold a few more MiB.
    # Decompressing the whole file would take the 50 MB.
    assert peak < 8 * 2**20, f"peak {peak} bytes"


def test_read_idx_refuses_a_declared_size_over_the_limit_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.gz", idx_bytes(np.zeros(3, np.uint8), shape=(2**31 + 1,)), True)
    info, peak = dataset_error_and_peak_memory(lambda: read_idx(path))
    assert str(info.value) == (
        f"{path}: header says shape (2147483649,) of uint8 = 2147483649 payload bytes, "
        "more than the limit of 2147483648 (datasets.MAX_IDX_BYTES)"
    )
    assert peak < 2**20, f"peak {peak} bytes"
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 12)
    assert read_idx(write(tmp_path / "ok", idx_bytes(np.zeros(3, np.int32)))).shape == (3,)
    with pytest.raises(DatasetError, match="16 payload bytes, more than the limit of 12"):
        read_idx(write(tmp_path / "over", idx_bytes(np.zeros(4, np.int32))))


def test_out_of_memory_is_a_dataset_error_naming_the_file(
    toy: list[bytes], iso: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_set(iso / "d", toy)

    def no_memory(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(np, "frombuffer", no_memory)
    with pytest.raises(DatasetError) as info:
        datasets.mnist(iso / "d")
    assert str(info.value) == (
        f"{iso / 'd' / NAMES[0]}.gz: header says shape (3, 28, 28) of uint8 = 2352 payload "
        "bytes: not enough memory to read them"
    )


def test_read_idx_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# --- checks on a loaded set ---------------------------------------------------------------


def test_toy_set_loads_gz_or_raw(toy: list[bytes], iso: Path) -> None:
    for gz in (True, False):
        write_set(iso / f"d{gz}", toy, gz=gz)
        x_train, y_train, x_test, y_test = datasets.mnist(iso / f"d{gz}")
        assert x_train.shape == (3, 28, 28) and y_train.shape == (3,)
        assert x_test.shape == (2, 28, 28) and y_test.shape == (2,)
        assert all(a.dtype == np.uint8 for a in (x_train, y_train, x_test, y_test))
        y_path = iso / f"d{gz}" / (f"{NAMES[3]}.gz" if gz else NAMES[3])
        np.testing.assert_array_equal(y_test, read_idx(y_path))


def _bad_set(iso: Path, index: int, data: bytes) -> Path:
    raws = toy_set()
    raws[index] = data
    write_set(iso / "d", raws)
    return iso / "d" / f"{NAMES[index]}.gz"


@pytest.mark.parametrize(
    ("index", "data", "match"),
    [
        (1, idx_bytes(np.array([1, 10, 2], np.uint8)), "labels must be 0-9, found 10"),
        (3, idx_bytes(np.array([1, 2, 3], np.uint8)), "holds 2 images but .* 3 labels"),
        (0, idx_bytes(np.zeros((3, 28, 27), np.uint8)), r"expected uint8 images \(N, 28, 28\)"),
        (2, idx_bytes(np.zeros((2, 28, 28), np.int32)), "expected uint8 images"),
        (1, idx_bytes(np.zeros((3, 1), np.uint8)), r"expected uint8 labels \(N,\)"),
    ],
    ids=["label-range", "count-mismatch", "image-shape", "image-dtype", "label-shape"],
)
def test_bad_set_is_rejected(iso: Path, index: int, data: bytes, match: str) -> None:
    path = _bad_set(iso, index, data)
    with pytest.raises(DatasetError, match=match) as info:
        datasets.mnist(iso / "d")
    assert str(path) in str(info.value)


def test_checksum_mismatch_names_file_and_digests(iso: Path) -> None:
    raws = toy_set()
    write_set(iso / "d", raws)
    with pytest.raises(DatasetError) as info:
        datasets.mnist(iso / "d")  # a valid set, but not MNIST
    message = str(info.value)
    assert str(iso / "d" / f"{NAMES[0]}.gz") in message
    assert datasets.MNIST_MD5[0] in message and md5s(raws)[0] in message


def test_bad_file_in_a_place_is_an_error_not_a_fallback(toy: list[bytes], iso: Path) -> None:
    write_set(iso / "repo" / "mnist", [*toy[:3], b"garbage"])
    write_set(iso / "cache" / "tinygrad_np" / "mnist", toy)
    with pytest.raises(DatasetError, match="not an IDX file"):
        datasets.mnist()


# --- where it looks -----------------------------------------------------------------------


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records the directory each successful load read its files from."""
    dirs: list[Path] = []
    check = datasets._check

    def spy(files: list[Path], sums: tuple[str, ...]) -> Any:
        dirs.append(files[0].parent)
        return check(files, sums)

    monkeypatch.setattr(datasets, "_check", spy)
    return dirs


def test_lookup_order(toy: list[bytes], iso: Path, used: list[Path], monkeypatch: Any) -> None:
    arg, env, repo, cache = iso / "arg", iso / "env", iso / "repo", iso / "cache"
    for d in (arg, env / "mnist", repo / "mnist", cache / "tinygrad_np" / "mnist"):
        write_set(d, toy)
    monkeypatch.setenv("TINYGRAD_NP_DATA", str(env))
    datasets.mnist(arg)
    datasets.mnist(str(arg))
    datasets.mnist()
    monkeypatch.delenv("TINYGRAD_NP_DATA")
    datasets.mnist()
    monkeypatch.setenv("TINYGRAD_NP_DATA", "")  # empty counts as unset
    datasets.mnist()
    write(repo / "mnist" / NAMES[2], b"")  # raw beats .gz in one place
    with pytest.raises(DatasetError, match="not an IDX file"):
        datasets.mnist()
    for name in NAMES:
        for p in (repo / "mnist").glob(f"{name}*"):
            p.unlink()
    datasets.mnist()
    cache = cache / "tinygrad_np" / "mnist"
    assert used == [arg, arg, env / "mnist", *[repo / "mnist"] * 3, cache]


def test_cache_defaults_to_home(toy: list[bytes], iso: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(iso / "home"))
    write_set(iso / "home" / ".cache" / "tinygrad_np" / "mnist", toy, gz=False)
    assert datasets.mnist()[1].tolist() == list(np.frombuffer(toy[1][8:], np.uint8))


def test_env_var_pointing_to_missing_dir_is_reported(
    toy: list[bytes], iso: Path, monkeypatch: Any
) -> None:
    write_set(iso / "repo" / "mnist", toy)  # would load, but the variable wins
    monkeypatch.setenv("TINYGRAD_NP_DATA", str(iso / "nowhere"))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ("file:///unused/",))
    monkeypatch.setattr(datasets, "_download", fail_download)
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist()
    message = str(info.value)
    assert f"{iso / 'nowhere' / 'mnist'} ($TINYGRAD_NP_DATA/mnist): no such directory" in message
    assert "is the only place looked in" in message


def test_path_argument_missing_files_are_reported(toy: list[bytes], iso: Path) -> None:
    write_set(iso / "repo" / "mnist", toy)
    write_set(iso / "d", toy[:2])
    with pytest.raises(FileNotFoundError) as info:  # DatasetNotFoundError is one
        datasets.mnist(iso / "d")
    message = str(info.value)
    assert f"{iso / 'd'} (path argument): missing {NAMES[2]}[.gz], {NAMES[3]}[.gz]" in message
    assert isinstance(info.value, DatasetError)


def test_all_fail_error_lists_every_place_and_mirror(iso: Path, monkeypatch: Any) -> None:
    write_set(iso / "repo" / "mnist", toy_set()[:1])
    mirrors = (f"{(iso / 'm1').as_uri()}/", f"{(iso / 'm2').as_uri()}/")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", mirrors)
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist()
    message = str(info.value)
    cache = iso / "cache" / "tinygrad_np" / "mnist"
    assert message.startswith("MNIST not found. Looked in:")
    assert f"{iso / 'repo' / 'mnist'} (repository data): missing {NAMES[1]}[.gz]" in message
    assert f"{cache} (user cache): no such directory" in message
    for m in mirrors:
        assert f"{m}{NAMES[0]}.gz: <urlopen error" in message
    assert f"Download into {cache} failed" in message
    assert "mnist(path='DIR')" in message and "TINYGRAD_NP_DATA=ROOT" in message
    assert f"user cache {cache}" in message
    assert list(cache.iterdir()) == []


def test_no_mirrors_and_unwritable_cache_are_reported(iso: Path, monkeypatch: Any) -> None:
    with pytest.raises(DatasetNotFoundError, match="no mirrors to download from"):
        datasets.mnist()
    write(iso / "blocker", b"")
    monkeypatch.setenv("XDG_CACHE_HOME", str(iso / "blocker"))
    with pytest.raises(DatasetNotFoundError, match="cannot create"):
        datasets.mnist()


def test_fashion_mnist_looks_in_debian_dir(iso: Path, used: list[Path], monkeypatch: Any) -> None:
    raws = toy_set(seed=1)
    monkeypatch.setattr(datasets, "FASHION_MNIST_MD5", md5s(raws))
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", ())
    write_set(iso / "debian", raws)
    write_set(iso / "cache" / "tinygrad_np" / "fashion-mnist", raws)
    datasets.fashion_mnist()
    assert used == [iso / "debian"]
    (iso / "debian" / f"{NAMES[0]}.gz").unlink()
    datasets.fashion_mnist()
    assert used[-1] == iso / "cache" / "tinygrad_np" / "fashion-mnist"


# --- downloading (offline: file:// and a loopback HTTP server) ----------------------------


@pytest.fixture
def mirror(toy: list[bytes], iso: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file:// mirror holding the toy set, listed after one that does not exist."""
    write_set(iso / "mirror", toy)
    mirrors = (f"{(iso / 'absent').as_uri()}/", f"{(iso / 'mirror').as_uri()}/")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", mirrors)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # plain stderr progress
    return iso / "mirror"


def test_download_fills_cache_then_reuses_it(
    mirror: Path, iso: Path, monkeypatch: Any, capsys: Any
) -> None:
    x_train, y_train, _, y_test = datasets.mnist()
    assert x_train.shape == (3, 28, 28)
    np.testing.assert_array_equal(y_test, read_idx(mirror / f"{NAMES[3]}.gz"))
    cache = iso / "cache" / "tinygrad_np" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in NAMES)
    assert "downloading train-images-idx3-ubyte.gz" in capsys.readouterr().err
    monkeypatch.setattr(datasets, "_download", fail_download)
    np.testing.assert_array_equal(datasets.mnist()[1], y_train)


def test_download_fetches_only_missing_files(mirror: Path, iso: Path, toy: list[bytes]) -> None:
    cache = iso / "cache" / "tinygrad_np" / "mnist"
    write_set(cache, toy, gz=False)
    (cache / NAMES[1]).unlink()
    datasets.mnist()
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [*NAMES[::2], NAMES[3], NAMES[1] + ".gz"]
    )


@pytest.mark.parametrize("bad", ["checksum", "truncated"])
def test_bad_download_leaves_nothing_in_cache(mirror: Path, iso: Path, bad: str) -> None:
    target = mirror / f"{NAMES[2]}.gz"
    if bad == "checksum":
        target.write_bytes(gzip.compress(toy_set(seed=5)[2]))
    else:
        target.write_bytes(target.read_bytes()[:-20])
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist()
    message = str(info.value)
    url = f"{mirror.as_uri()}/{NAMES[2]}.gz"
    if bad == "checksum":
        actual = hashlib.md5(toy_set(seed=5)[2]).hexdigest()
        expected = datasets.MNIST_MD5[2]
        assert f"{url}: MD5 of decompressed data is {actual}, expected {expected}" in message
    else:
        assert f"{url}: corrupted or truncated gzip data" in message
    cache = iso / "cache" / "tinygrad_np" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == [f"{NAMES[0]}.gz", f"{NAMES[1]}.gz"]


def test_download_uses_tqdm_when_importable(mirror: Path, monkeypatch: Any) -> None:
    updates: list[int] = []

    class FakeBar:
        def __init__(self, **kwargs: Any) -> None:
            assert kwargs["unit"] == "B" and kwargs["total"] > 0

        def update(self, n: int) -> None:
            updates.append(n)

        def close(self) -> None:
            updates.append(-1)

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeBar))
    datasets.mnist()
    assert updates.count(-1) == 4 and sum(u for u in updates if u > 0) > 0


@pytest.fixture
def http_mirror(mirror: Path) -> Iterator[str]:
    """The same files served over HTTP on the loopback interface."""
    handler = functools.partial(_QuietHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_download_over_http(http_mirror: str, mirror: Path, monkeypatch: Any) -> None:
    # Plain http is refused (test_plain_http_is_refused), but a loopback server needs no
    # certificate: allowing it here runs a download through real sockets.
    monkeypatch.setattr(datasets, "DOWNLOAD_SCHEMES", ("http",))
    (mirror / f"{NAMES[3]}.gz").unlink()
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", (http_mirror,))
    with pytest.raises(DatasetNotFoundError, match=f"{NAMES[3]}.gz: HTTP Error 404"):
        datasets.mnist()
    (mirror / f"{NAMES[3]}.gz").write_bytes(gzip.compress(toy_set()[3]))
    assert datasets.mnist()[3].shape == (2,)


# --- downloads are bounded: https only, a deadline, a size limit, no partial files --------


def test_built_in_mirrors_are_all_https() -> None:
    for mirror in (*datasets.MNIST_MIRRORS, *datasets.FASHION_MNIST_MIRRORS):
        assert mirror.startswith("https://")
    assert datasets.FASHION_MNIST_MIRRORS, "Fashion-MNIST has an https mirror"


def test_plain_http_is_refused(iso: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ("http://127.0.0.1:9/",))
    monkeypatch.setattr(datasets, "_urlopen", fail_download)
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist()
    assert (
        f"http://127.0.0.1:9/{NAMES[0]}.gz: refused, only https:// or file:// URLs are "
        "downloaded from"
    ) in str(info.value)


def test_a_redirect_away_from_https_is_refused() -> None:
    handler = datasets._AllowedRedirects()
    request = urllib.request.Request("https://mirror.example/a.gz")
    with pytest.raises(DatasetError) as info:
        handler.redirect_request(request, io.BytesIO(), 302, "Found", Message(), "http://x/a.gz")
    assert str(info.value) == (
        "https://mirror.example/a.gz: refused a redirect to http://x/a.gz, "
        "not an https:// or file:// URL"
    )
    moved = handler.redirect_request(
        request, io.BytesIO(), 302, "Found", Message(), "https://y/a.gz"
    )
    assert moved is not None and moved.full_url == "https://y/a.gz"


class FakeResponse:
    """What urlopen returns, sending ``chunk`` on each read; ``step`` runs before each read."""

    def __init__(self, chunk: bytes, step: Any = lambda: None) -> None:
        self.chunk, self.step, self.reads = chunk, step, 0
        self.headers: dict[str, str] = {}
        self.timeouts: list[float] = []
        self.fp = types.SimpleNamespace(raw=types.SimpleNamespace(_sock=self))

    def settimeout(self, seconds: float) -> None:  # the socket under the response
        self.timeouts.append(seconds)

    def read1(self, n: int) -> bytes:
        self.step()
        self.reads += 1
        return self.chunk

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def fake_mirror(iso: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An https mirror for MNIST whose connection is patched in; returns the cache directory."""
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ("https://mirror.example/",))
    monkeypatch.setitem(sys.modules, "tqdm", None)
    return iso / "cache" / "tinygrad_np" / "mnist"


def test_a_trickling_download_stops_at_the_deadline(
    fake_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]

    def seven_seconds_pass() -> None:
        now[0] += 7.0

    response = FakeResponse(b"\x00" * 100, seven_seconds_pass)
    monkeypatch.setattr(datasets, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(datasets, "_urlopen", lambda url, timeout: response)
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist()
    assert (
        f"https://mirror.example/{NAMES[0]}.gz: not finished within 120 s "
        f"(datasets.DOWNLOAD_DEADLINE), {100 * response.reads} bytes received"
    ) in str(info.value)
    assert response.reads == 18  # 17 reads end at 1119 s, the 18th at 1126 s
    # No single read may wait past the deadline: each socket timeout ends by 1120 s.
    assert response.timeouts[0] == datasets.SOCKET_TIMEOUT
    for i, timeout in enumerate(response.timeouts):
        assert 1000 + 7 * i + timeout <= 1120
    assert list(fake_mirror.iterdir()) == []


def test_a_download_larger_than_the_limit_is_abandoned(
    fake_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "MAX_DOWNLOAD_BYTES", 10_000)
    monkeypatch.setattr(datasets, "_urlopen", lambda url, timeout: FakeResponse(bytes(4096)))
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist()
    assert (
        f"https://mirror.example/{NAMES[0]}.gz: more than 10000 bytes "
        "(datasets.MAX_DOWNLOAD_BYTES), far more than any dataset file"
    ) in str(info.value)
    assert list(fake_mirror.iterdir()) == []


def test_an_interrupted_download_leaves_no_partial_file(
    fake_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt_the_second_read() -> None:
        if response.reads == 1:
            raise KeyboardInterrupt

    response = FakeResponse(bytes(4096), interrupt_the_second_read)
    monkeypatch.setattr(datasets, "_urlopen", lambda url, timeout: response)
    with pytest.raises(KeyboardInterrupt):
        datasets.mnist()
    assert list(fake_mirror.iterdir()) == []


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 10, then waits until the test ends."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(bytes(10))
        self.wfile.flush()
        self.release.wait(timeout=30)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_stalled_server_is_cut_off_at_the_deadline(
    fake_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _StallingHandler.release.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setattr(datasets, "DOWNLOAD_SCHEMES", ("http",))  # as in test_download_over_http
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", (url,))
    monkeypatch.setattr(datasets, "DOWNLOAD_DEADLINE", 0.5)
    try:
        start = time.monotonic()
        with pytest.raises(DatasetNotFoundError) as info:
            datasets.mnist()
        elapsed = time.monotonic() - start
    finally:
        _StallingHandler.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    message = str(info.value)
    assert f"{url}{NAMES[0]}.gz: not finished within 0.5 s" in message
    assert "10 bytes received" in message
    assert elapsed < 10, "the 30 s socket timeout would be the only limit without the deadline"
    assert list(fake_mirror.iterdir()) == []


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_partial_downloads_of_dead_processes_are_removed(
    mirror: Path, iso: Path, dead_pid: int
) -> None:
    cache = iso / "cache" / "tinygrad_np" / "mnist"
    cache.mkdir(parents=True)
    target = f"{NAMES[0]}.gz"
    stale = cache / f".{target}.{dead_pid}.0123abcd.part"
    kept = [
        cache / f".{target}.{os.getpid()}.0123abcd.part",  # a download in progress
        cache / f".{target}.{dead_pid}.part",  # not a name the downloader writes
        cache / f".{NAMES[0]}.{dead_pid}.0123abcd.part",  # another target's
    ]
    for path in (stale, *kept):
        path.write_bytes(b"partial")
    datasets.mnist()
    assert not stale.exists()
    assert all(path.exists() for path in kept)


# --- the real data ------------------------------------------------------------------------

REPO_MNIST = Path(__file__).resolve().parent.parent / "data" / "mnist"


def test_bundled_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYGRAD_NP_DATA", raising=False)
    x_train, y_train, x_test, y_test = datasets.mnist()
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert all(a.dtype == np.uint8 for a in (x_train, y_train, x_test, y_test))
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert x_train.max() == 255 and x_train.min() == 0
    for name, digest in zip(NAMES, datasets.MNIST_MD5, strict=True):
        raw = gzip.decompress((REPO_MNIST / f"{name}.gz").read_bytes())
        assert hashlib.md5(raw).hexdigest() == digest


def test_mnist_is_not_fashion_mnist() -> None:
    with pytest.raises(DatasetError, match="MD5 of decompressed data"):
        datasets.fashion_mnist(REPO_MNIST)


@pytest.mark.skipif(
    not (datasets.DEBIAN_FASHION_MNIST / f"{NAMES[0]}.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_debian_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYGRAD_NP_DATA", raising=False)
    x_train, y_train, x_test, y_test = datasets.fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
