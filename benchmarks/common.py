"""Shared pieces of the benchmark: data, initialisation, configurations and evaluation.

Everything here is plain NumPy so that every contender starts from bit-identical inputs.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = REPO_ROOT / "data" / "mnist"

N_IN, N_HIDDEN, N_OUT = 784, 128, 10
LR = 0.1
INIT_SEED = 0  # rng for W1 then W2
SHUFFLE_SEED = 1  # one generator per run; epoch k uses its k-th permutation
REFERENCE_ACCURACY_A = 0.9052  # test accuracy after one epoch of config "a" (float32, batch 128)

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Config:
    """One benchmark setting."""

    key: str
    batch: int | None  # None: full batch (all training rows every iteration)
    dtype: str
    description: str

    @property
    def unit(self) -> str:
        return "s/epoch" if self.batch is not None else "s/iter"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unit"] = self.unit
        return d


CONFIGS: dict[str, Config] = {
    "a": Config("a", 128, "float32", "batch 128, float32, one shuffled epoch per sample"),
    "b": Config("b", None, "float64", "full batch, float64, one iteration per sample"),
    "c": Config("c", None, "float32", "full batch, float32, one iteration per sample"),
}


# --------------------------------------------------------------------------- data


def _read_idx(path: Path) -> np.ndarray:
    """Minimal IDX reader (the MNIST file format): big-endian header, then raw bytes."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:  # 0x08: unsigned byte, the only type MNIST uses
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {shape}, got {data.size} bytes")
    out: np.ndarray = data.reshape(shape)
    return out


def load_mnist_uint8(
    directory: Path = MNIST_DIR,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train (60000,28,28), y_train, x_test (10000,28,28), y_test), all uint8."""
    return (
        _read_idx(directory / "train-images-idx3-ubyte.gz"),
        _read_idx(directory / "train-labels-idx1-ubyte.gz"),
        _read_idx(directory / "t10k-images-idx3-ubyte.gz"),
        _read_idx(directory / "t10k-labels-idx1-ubyte.gz"),
    )


@dataclass
class Data:
    x_train: np.ndarray  # (N, 784) in the config dtype, values in [0, 1]
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def prepare(
    dtype: str, source: str = "mnist", n_train: int | None = None, n_test: int | None = None
) -> Data:
    """Flattened inputs divided by 255 in ``dtype`` and int64 labels.

    ``source`` is ``"mnist"`` (the bundled files) or ``"synthetic"`` (random uint8 images with
    labels that depend on them, so that a few SGD steps make progress; no files needed).
    ``n_train``/``n_test`` keep only the first rows (for smoke runs).
    """
    if source == "mnist":
        xtr, ytr, xte, yte = load_mnist_uint8()
    elif source == "synthetic":
        g = np.random.default_rng(1234)
        ntr, nte = n_train or 2048, n_test or 512
        xtr = g.integers(0, 256, size=(ntr, 28, 28), dtype=np.uint8)
        xte = g.integers(0, 256, size=(nte, 28, 28), dtype=np.uint8)
        proj = g.standard_normal((N_IN, N_OUT))
        ytr = (xtr.reshape(ntr, -1) @ proj).argmax(1).astype(np.uint8)
        yte = (xte.reshape(nte, -1) @ proj).argmax(1).astype(np.uint8)
    else:
        raise ValueError(f"unknown data source {source!r}")
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    if n_test is not None:
        xte, yte = xte[:n_test], yte[:n_test]

    def flat(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x.reshape(len(x), -1).astype(dtype)
        out /= 255
        return out

    return Data(flat(xtr), ytr.astype(np.int64), flat(xte), yte.astype(np.int64), source)


def init_params(dtype: str) -> Params:
    """W1 then W2 from default_rng(0), scaled by 0.01; zero biases."""
    rng = np.random.default_rng(INIT_SEED)
    w1 = 0.01 * rng.standard_normal((N_IN, N_HIDDEN))
    w2 = 0.01 * rng.standard_normal((N_HIDDEN, N_OUT))
    return {
        "W1": w1.astype(dtype),
        "b1": np.zeros(N_HIDDEN, dtype=dtype),
        "W2": w2.astype(dtype),
        "b2": np.zeros(N_OUT, dtype=dtype),
    }


def batch_slices(perm: np.ndarray, batch: int) -> list[np.ndarray]:
    """Consecutive chunks of a permutation; the last one may be partial (60000 -> 469 steps)."""
    return [perm[s : s + batch] for s in range(0, len(perm), batch)]


def evaluate(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``params`` on (x, y), computed in float64."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x64 = x.astype(np.float64)
    z = np.maximum(x64 @ p["W1"] + p["b1"], 0.0) @ p["W2"] + p["b2"]
    z -= z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    rows = np.arange(len(y))
    loss = float(np.mean(lse - z[rows, y]))
    acc = float(np.mean(z.argmax(axis=1) == y))
    return acc, loss
