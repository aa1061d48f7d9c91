"""Random keys passed explicitly, as JAX passes them, so that forward functions stay pure.

A key is a NumPy array of two uint64 words. The same key always gives the same numbers,
so a function that takes its randomness as a key argument (``tg.nn.dropout(x, rate,
key)``) gives the same result every time it is called with the same arguments, and a
run is reproduced by its seed alone::

    key = tg.random.key(0)
    for step in range(steps):
        step_key = tg.random.fold_in(key, step)   # a fresh key for every step
        ...tg.nn.dropout(hidden, 0.5, step_key)...

    first, second = tg.random.split(key)          # two independent keys

Use each key for one purpose only: two calls with one key draw the same numbers. New
keys come from :func:`split` and :func:`fold_in`, which hash the parent key (with
NumPy's ``SeedSequence``) together with a child number; :func:`generator` turns a key
into a NumPy ``Generator`` (a Philox counter-based generator keyed by it) for drawing.
Keys are plain arrays, so they go into pytrees and checkpoints like parameters do.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Key", "PRNGKey", "check_key", "fold_in", "generator", "key", "split"]

Key = npt.NDArray[np.uint64]
"""A key: a uint64 array of shape (2,)."""

_SPLIT, _FOLD_IN = 0, 1  # keep split's and fold_in's children apart


def check_key(key: Any, caller: str = "check_key") -> Key:
    """``key`` itself if it is a key; else a TypeError, naming ``caller``, saying what it is.

    For functions of your own that take a key, as ``tg.nn.dropout`` does."""
    if not (isinstance(key, np.ndarray) and key.dtype == np.uint64 and key.shape == (2,)):
        described = (
            f"an array of dtype {key.dtype} and shape {key.shape}"
            if isinstance(key, np.ndarray)
            else f"{type(key).__name__} {key!r}"
        )
        raise TypeError(
            f"{caller}: key must be a random key, a uint64 array of shape (2,) made by "
            f"tg.random.key(seed), split or fold_in; got {described}"
        )
    return key


def _non_negative_int(op: str, name: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {number}")
    return number


def _derived(parent: Key, branch: int, child: int) -> Key:
    words = np.random.SeedSequence([int(w) for w in parent], spawn_key=(branch, child))
    return np.asarray(words.generate_state(2, np.uint64), np.uint64)


def key(seed: int) -> Key:
    """The key of a non-negative integer seed (of any size)."""
    seed = _non_negative_int("key", "seed", seed)
    return np.asarray(np.random.SeedSequence(seed).generate_state(2, np.uint64), np.uint64)


PRNGKey = key  # JAX's older name for it


def split(key: Key, num: int = 2) -> npt.NDArray[np.uint64]:
    """``num`` new keys derived from ``key``, as the rows of a (num, 2) array.

    They are independent of each other and of the numbers ``key`` itself draws.
    """
    parent = check_key(key, "split")
    count = _non_negative_int("split", "num", num)
    keys = np.empty((count, 2), np.uint64)
    for i in range(count):
        keys[i] = _derived(parent, _SPLIT, i)
    return keys


def fold_in(key: Key, data: int) -> Key:
    """A new key derived from ``key`` and a non-negative integer, e.g. a step number:
    ``fold_in(key, step)`` gives every step its own key without keeping any state."""
    return _derived(check_key(key, "fold_in"), _FOLD_IN, _non_negative_int("fold_in", "data", data))


def generator(key: Key) -> np.random.Generator:
    """A NumPy ``Generator`` drawing the numbers of ``key`` (Philox keyed by it): the same
    key gives the same stream."""
    return np.random.Generator(np.random.Philox(key=check_key(key, "generator")))
