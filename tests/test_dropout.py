"""Specification of explicit random keys (``tg.random``) and ``tg.nn.dropout``: pure,
reproducible randomness, PyTorch's scaling, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_np as tg
from tinygrad_np.testing import check_grads
from tinygrad_np.testing import strategies as tst

# Forward mode is the transpose of the VJPs: checking both checks that they are linear.
BOTH_MODES = ("fwd", "rev")

# --- keys ------------------------------------------------------------------------------------


def test_a_key_is_two_uint64_words_determined_by_the_seed():
    key = tg.random.key(0)
    assert key.dtype == np.uint64 and key.shape == (2,)
    assert np.array_equal(key, tg.random.key(0))
    assert not np.array_equal(key, tg.random.key(1))
    assert tg.random.key(2**100).shape == (2,)  # seeds of any size
    assert np.array_equal(tg.random.PRNGKey(0), key)  # JAX's older name


def test_split_and_fold_in_give_distinct_reproducible_keys():
    key = tg.random.key(0)
    children = tg.random.split(key, 3)
    assert children.shape == (3, 2) and children.dtype == np.uint64
    assert np.array_equal(children, tg.random.split(key, 3))
    assert np.array_equal(tg.random.split(key, 2), children[:2])  # a prefix of the same list
    folded = [tg.random.fold_in(key, step) for step in range(3)]
    assert np.array_equal(folded[1], tg.random.fold_in(key, 1))
    every = [key, *children, *folded]
    assert len({k.tobytes() for k in every}) == len(every)


def test_a_key_gives_the_same_stream_every_time():
    key = tg.random.key(7)
    first = tg.random.generator(key).random(5)
    assert np.array_equal(first, tg.random.generator(key).random(5))
    assert not np.array_equal(first, tg.random.generator(tg.random.fold_in(key, 0)).random(5))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: tg.random.key(-1), ValueError, "seed must be non-negative, got -1"),
        (lambda: tg.random.key(1.5), TypeError, "seed must be an int, got 1.5"),
        (lambda: tg.random.split(tg.random.key(0), -2), ValueError, "num must be non-negative"),
        (lambda: tg.random.fold_in(np.zeros(2), 1), TypeError, "dtype float64 and shape"),
        (lambda: tg.random.generator(3), TypeError, r"key must be a random key.*got int 3"),
    ],
)
def test_bad_seeds_and_keys_are_refused_with_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- dropout ---------------------------------------------------------------------------------


def test_dropout_keeps_each_element_where_its_uniform_is_at_least_the_rate():
    x = np.arange(1.0, 13.0).reshape(3, 4)
    key = tg.random.key(3)
    kept = tg.random.generator(key).random(x.shape, dtype=np.float32) >= 0.25
    # The documented rule: survivors times 1 / (1 - rate) (as PyTorch scales), others zero.
    assert np.array_equal(tg.nn.dropout(x, 0.25, key), np.where(kept, x * (1 / 0.75), 0.0))


@given(rate=st.floats(0.05, 0.95))
def test_dropout_keeps_about_one_minus_rate_of_the_elements_and_preserves_the_mean(rate):
    n = 100_000
    y = tg.nn.dropout(np.ones(n), rate, tg.random.key(0))
    kept = np.count_nonzero(y)
    # Binomial(n, 1 - rate): its standard deviation is at most sqrt(n) / 2 = 158; six of
    # them make a false alarm a one-in-a-billion event.
    assert abs(kept - n * (1 - rate)) <= 6 * np.sqrt(n * rate * (1 - rate))
    assert np.allclose(y[y != 0], 1 / (1 - rate))


def test_the_same_key_gives_the_same_mask_whatever_the_dtype():
    key = tg.random.key(5)
    masks = [tg.nn.dropout(np.ones((8, 8), dtype), 0.5, key) != 0 for dtype in ("f2", "f4", "f8")]
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[1], masks[2])
    assert not np.array_equal(masks[0], tg.nn.dropout(np.ones((8, 8)), 0.5, tg.random.key(6)) != 0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dropout_keeps_the_dtype(dtype):
    x = np.ones((4, 5), dtype)
    key = tg.random.key(0)
    assert tg.nn.dropout(x, 0.3, key).dtype == dtype
    assert tg.grad(lambda x: tg.sum(tg.nn.dropout(x, 0.3, key)))(x).dtype == dtype


def test_rate_zero_is_the_identity_and_rate_one_zeros():
    x = np.arange(6.0).reshape(2, 3)
    key = tg.random.key(0)
    assert tg.nn.dropout(x, 0.0, key) is x
    assert np.array_equal(tg.nn.dropout(x, 1.0, key), np.zeros((2, 3)))
    assert np.array_equal(
        tg.grad(lambda x: tg.sum(tg.nn.dropout(x, 1.0, key)))(x), np.zeros((2, 3))
    )


@given(x=tst.float_arrays(dtype=np.float64), rate=st.floats(0.0, 0.9), seed=st.integers(0, 99))
def test_dropout_has_correct_first_and_second_derivatives(x, rate, seed):
    key = tg.random.key(seed)
    check_grads(lambda x: tg.tanh(tg.nn.dropout(x, rate, key)), (x,), order=2, modes=BOTH_MODES)


def test_dropout_inside_a_function_is_pure():
    key = tg.random.key(1)
    x = np.random.default_rng(0).standard_normal((16, 16))

    def loss(x):
        return tg.sum(tg.nn.dropout(x, 0.5, key) ** 2)

    first, second = tg.value_and_grad(loss)(x), tg.value_and_grad(loss)(x)
    assert first[0] == second[0] and np.array_equal(first[1], second[1])


@pytest.mark.parametrize(
    ("rate", "key", "error", "message"),
    [
        (1.5, tg.random.key(0), ValueError, r"rate must lie in \[0, 1\], got 1.5"),
        (-0.1, tg.random.key(0), ValueError, r"rate must lie in \[0, 1\]"),
        ("0.5", tg.random.key(0), TypeError, "rate must be a number"),
        (0.5, 0, TypeError, r"dropout.*key must be a random key"),
        (0.5, np.zeros(2, np.uint32), TypeError, "dtype uint32 and shape"),
    ],
)
def test_bad_rates_and_keys_are_refused(rate, key, error, message):
    with pytest.raises(error, match=message):
        tg.nn.dropout(np.ones(3), rate, key)
