"""tg.nn.linear is x @ weight + bias as one op: the same numbers, one record, clear errors.

Its derivatives are checked against finite differences in test_properties_ops.py.
"""

import numpy as np
import pytest

import tinygrad_np as tg

rng = np.random.default_rng(7)
EPS = np.finfo(np.float64).eps


def sum_rounding_bound(abs_terms_sum, n_terms):
    """Rounding error of a float64 sum of products, in any order: n * eps * sum |terms|."""
    return 2 * n_terms * EPS * abs_terms_sum


def composed(x, weight, bias):
    return x @ weight + bias


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias_shape", [(4,), (1, 4), (5, 4), ()])
def test_value_and_gradients_are_bitwise_those_of_matmul_plus_bias(dtype, bias_shape):
    # The same NumPy operations in the same order, so not a single bit may differ.
    x = rng.standard_normal((5, 3)).astype(dtype)
    weight = rng.standard_normal((3, 4)).astype(dtype)
    bias = rng.standard_normal(bias_shape).astype(dtype)
    probe = rng.standard_normal((5, 4)).astype(dtype)

    def loss(layer):
        return lambda x, w, b: tg.sum(tg.tanh(layer(x, w, b)) * probe)

    fused = tg.value_and_grad(loss(tg.nn.linear), argnums=(0, 1, 2))(x, weight, bias)
    plain = tg.value_and_grad(loss(composed), argnums=(0, 1, 2))(x, weight, bias)
    assert fused[0] == plain[0]
    for g_fused, g_plain in zip(fused[1], plain[1], strict=True):
        assert g_fused.dtype == dtype
        np.testing.assert_array_equal(g_fused, g_plain)


def test_records_one_op_where_the_composition_records_two():
    x, weight, bias = np.ones((2, 3)), np.ones((3, 4)), np.ones(4)
    tape = tg.trace(lambda w, b: tg.nn.linear(x, w, b), weight, bias, argnums=(0, 1))
    assert [op.name for op in tape.ops] == ["linear"]
    tape = tg.trace(composed, x, weight, bias, argnums=(1, 2))
    assert [op.name for op in tape.ops] == ["matmul", "add"]


def test_adds_the_bias_in_place_without_touching_its_inputs():
    x, weight, bias = np.ones((2, 3)), np.ones((3, 4)), np.arange(4.0)
    copies = [a.copy() for a in (x, weight, bias)]
    out = tg.nn.linear(x, weight, bias)
    np.testing.assert_array_equal(out, [[3.0, 4.0, 5.0, 6.0]] * 2)
    for original, copy in zip((x, weight, bias), copies, strict=True):
        np.testing.assert_array_equal(original, copy)
    assert not np.shares_memory(out, bias)


def test_a_wider_bias_dtype_promotes_as_numpy_does():
    x, weight = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    bias = np.full(4, 0.1)  # float64
    out = tg.nn.linear(x, weight, bias)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, composed(x, weight, bias))
    grads = tg.grad(lambda p: tg.sum(tg.nn.linear(x, p["W"], p["b"])))({"W": weight, "b": bias})
    assert grads["W"].dtype == np.float32 and grads["b"].dtype == np.float64


def test_a_python_number_bias_keeps_the_dtype_as_in_numpy():
    x, weight = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    out = tg.nn.linear(x, weight, 0.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, composed(x, weight, 0.5))


def test_without_a_bias_it_is_the_matrix_product():
    x, weight = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    np.testing.assert_array_equal(tg.nn.linear(x, weight), x @ weight)
    g = tg.grad(lambda w: tg.sum(tg.nn.linear(x, w)))(weight)
    # d/dW sum(x @ W) = x.T @ ones: each column is the column sums of x (5 terms)
    expected = x.sum(axis=0)[:, None] * np.ones((1, 2))
    bound = sum_rounding_bound(np.abs(x).sum(axis=0)[:, None], 5)
    assert np.all(np.abs(g - expected) <= bound)


@pytest.mark.parametrize("x_shape", [(3,), (4, 5, 3)], ids=["one example", "batch axes"])
def test_a_single_example_and_leading_batch_axes(x_shape):
    x, weight, bias = rng.standard_normal(x_shape), rng.standard_normal((3, 2)), np.ones(2)
    np.testing.assert_array_equal(tg.nn.linear(x, weight, bias), composed(x, weight, bias))
    fused = tg.grad(lambda w: tg.sum(tg.nn.linear(x, w, bias) ** 2))(weight)
    plain = tg.grad(lambda w: tg.sum(composed(x, w, bias) ** 2))(weight)
    # Both are sums over the batch rows of x * 2(x w + b), summed in different orders.
    rows = x.reshape(-1, 3)
    terms = np.abs(rows).T @ np.abs(2 * (rows @ weight + bias))
    assert np.all(np.abs(fused - plain) <= 2 * sum_rounding_bound(terms, len(rows)))


def test_accepts_array_likes_and_constant_weights():
    x = [[1.0, 2.0]]
    out, g = tg.value_and_grad(lambda x: tg.sum(tg.nn.linear(x, [[1.0], [3.0]], [0.5])))(
        np.array(x)
    )
    assert out == 7.5
    np.testing.assert_array_equal(g, [[1.0, 3.0]])
    np.testing.assert_array_equal(tg.nn.linear(x, [[1.0], [3.0]]), [[7.0]])


def test_second_derivatives_flow_through_every_argument():
    x, weight, bias = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), np.zeros(2)

    def loss(w):
        return tg.sum(tg.nn.linear(x, w, bias) ** 2)

    v = rng.standard_normal((3, 2))
    # loss = |x w|^2, so its Hessian-vector product is 2 x.T (x v): two 4- and 3-term sums
    bound = sum_rounding_bound(2 * np.abs(x).T @ np.abs(x) @ np.abs(v), 4 + 3)
    assert np.all(np.abs(tg.hvp(loss, weight, v) - 2 * x.T @ (x @ v)) <= bound)


@pytest.mark.parametrize(
    ("x_shape", "weight_shape", "bias_shape", "message"),
    [
        ((5, 3), (2, 4), (4,), r"x of shape \(5, 3\) does not fit weight of shape \(2, 4\)"),
        ((5, 3), (3,), None, r"weight must be \(in_features, out_features\)"),
        ((5, 3), (3, 4, 1), None, r"weight of shape \(3, 4, 1\)"),
        ((), (3, 4), None, r"x of shape \(\) does not fit"),
        ((5, 3), (3, 4), (5,), r"bias of shape \(5,\) does not broadcast to the output's"),
        ((5, 3), (3, 4), (2, 5, 4), r"bias of shape \(2, 5, 4\) .* shape \(5, 4\)"),
    ],
)
def test_rejects_shapes_that_do_not_make_a_dense_layer(x_shape, weight_shape, bias_shape, message):
    x, weight = np.ones(x_shape), np.ones(weight_shape)
    bias = None if bias_shape is None else np.ones(bias_shape)
    with pytest.raises(ValueError, match=message):
        tg.nn.linear(x, weight, bias)
    with pytest.raises(ValueError, match=message):  # the same while traced
        tg.grad(lambda w: tg.sum(tg.nn.linear(x, w, bias)))(weight)
