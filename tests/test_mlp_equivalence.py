"""The article's claim as properties: tg.grad of the MLP is the tutorial's hand backprop.

The classic NumPy MNIST tutorial trains ``relu(X @ W1 + b1) @ W2 + b2`` with
softmax cross-entropy and derives its gradients by hand. For any batch size,
input width, hidden width, class count and weights, the engine's gradient must
equal those formulas, and gradient descent driven by either must end at the
same weights.

Both sides do the same float64 arithmetic in a different order, so they differ
by rounding alone: a few units of 1.1e-16 per operation, times sums of at most
16 terms, i.e. around 1e-14 relative to the magnitudes summed (see
``rounding_scales``). The bounds below
(1e-10 and 1e-9) leave four orders of magnitude, while any wrong formula is off
by a relative O(1). No finite differences are involved, so relu's kink needs no
margin: both sides use the mask ``Z1 > 0``.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_np as tg
from tinygrad_np.testing import strategies as tst

# Training runs 100 gradient evaluations per example: a quarter of the profile's examples.
TRAINING_EXAMPLES = max(3, settings().max_examples // 4)


def mlp_loss(params, X, labels):
    """The model and loss, written once, for the engine to differentiate."""
    hidden = tg.relu(X @ params["W1"] + params["b1"])
    return tg.nn.cross_entropy(hidden @ params["W2"] + params["b2"], labels)


def tutorial_gradients(params, X, Y):
    """The tutorial's backward pass, by hand; ``Y`` is one-hot, shape (m, classes)."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    m = X.shape[0]
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ W2 + b2
    shifted = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    A2 = shifted / shifted.sum(axis=1, keepdims=True)  # softmax
    dZ2 = A2 - Y
    dW2 = A1.T @ dZ2 / m
    db2 = dZ2.sum(axis=0) / m
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = X.T @ dZ1 / m
    db1 = dZ1.sum(axis=0) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def rounding_scales(params, X, Y):
    """The tutorial's formulas on magnitudes: the scale of each gradient's rounding error.

    A float64 sum or product of terms t_i is off by at most a few units of 1.1e-16
    times sum |t_i|, whatever the sum itself is: a gradient entry that cancels to
    0 (say two equal columns of W2) still carries the rounding of its terms. So
    the relative error below is measured against these magnitudes, the standard
    componentwise bound, not against the possibly tiny gradient.
    """
    m = X.shape[0]
    Z1 = X @ params["W1"] + params["b1"]
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ params["W2"] + params["b2"]
    shifted = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    dZ2 = shifted / shifted.sum(axis=1, keepdims=True) + Y  # |softmax| + |Y|
    dZ1 = (dZ2 @ np.abs(params["W2"]).T) * (Z1 > 0)
    return {
        "W1": np.abs(X).T @ dZ1 / m,
        "b1": dZ1.sum(axis=0) / m,
        "W2": A1.T @ dZ2 / m,
        "b2": dZ2.sum(axis=0) / m,
    }


def relative_error(computed, expected, scale):
    """max |computed - expected| relative to the largest rounding scale of the entries.

    A zero scale (e.g. every hidden unit off, so dW1 is exactly 0) demands equality.
    """
    error = np.max(np.abs(computed - expected), initial=0.0)
    largest = np.max(scale, initial=0.0)
    return error / largest if largest > 0 else (0.0 if error == 0 else np.inf)


@st.composite
def mlp_problems(draw):
    """Weights of a 2-layer MLP of random widths, a batch, and integer labels."""
    params = draw(
        tst.mlp_params(
            st.tuples(st.integers(1, 8), st.integers(1, 16), st.integers(2, 6)).map(list)
        )
    )
    inputs, classes = params["W1"].shape[0], params["W2"].shape[1]
    m = draw(st.integers(1, 16))
    X = draw(tst.float_arrays((m, inputs), min_value=-1.0, max_value=1.0))
    labels = draw(hnp.arrays(np.int64, m, elements=st.integers(0, classes - 1)))
    return params, X, labels


@given(mlp_problems())
def test_engine_gradient_equals_the_hand_derived_backprop(problem):
    params, X, labels = problem
    Y = np.eye(params["W2"].shape[1])[labels]
    expected = tutorial_gradients(params, X, Y)
    scales = rounding_scales(params, X, Y)
    for labels_given_as in (labels, Y):  # class indices, and one-hot probability rows
        grads = tg.grad(mlp_loss)(params, X, labels_given_as)
        assert list(grads) == ["W1", "b1", "W2", "b2"]
        for name in params:
            assert grads[name].shape == params[name].shape
            assert relative_error(grads[name], expected[name], scales[name]) < 1e-10, name


def train(params, gradient_fn, steps, learning_rate):
    for _ in range(steps):
        grads = gradient_fn(params)
        params = {name: params[name] - learning_rate * grads[name] for name in params}
    return params


@settings(max_examples=TRAINING_EXAMPLES)
@given(
    seed=st.integers(0, 2**32 - 1),
    widths=st.tuples(st.integers(1, 8), st.integers(1, 16), st.integers(2, 6)),
    batch=st.integers(1, 32),
)
def test_fifty_steps_of_descent_end_at_the_same_weights_either_way(seed, widths, batch):
    inputs, hidden, classes = widths
    rng = np.random.default_rng(seed)
    initial = {
        "W1": rng.standard_normal((inputs, hidden)) / np.sqrt(inputs),
        "b1": np.zeros(hidden),
        "W2": rng.standard_normal((hidden, classes)) / np.sqrt(hidden),
        "b2": np.zeros(classes),
    }
    X = rng.uniform(-1, 1, (batch, inputs))
    labels = rng.integers(0, classes, batch)
    Y = np.eye(classes)[labels]

    # A step of 0.1 keeps descent stable (|1 - 0.1 * curvature| <= 1 for these sizes), so
    # rounding differences are not amplified from step to step.
    by_engine = train(initial, lambda p: tg.grad(mlp_loss)(p, X, labels), 50, learning_rate=0.1)
    by_hand = train(initial, lambda p: tutorial_gradients(p, X, Y), 50, learning_rate=0.1)
    # Not a vacuous comparison: descent moved the weights, unless it started at a
    # stationary point (e.g. every hidden unit off and labels balanced to the prediction).
    moved = any(not np.array_equal(by_hand[name], initial[name]) for name in initial)
    stationary = all(not g.any() for g in tutorial_gradients(initial, X, Y).values())
    assert moved or stationary
    for name in initial:
        difference = np.max(np.abs(by_engine[name] - by_hand[name]))
        assert difference <= 1e-9 * max(1.0, np.max(np.abs(by_hand[name]))), (name, difference)
