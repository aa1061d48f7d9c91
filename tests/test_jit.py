"""tg.jit: a traced program replays the function exactly, or the trace is refused.

"Exactly" is bitwise: the replay runs the same NumPy calls in the same order as eager
execution, so every comparison here is ``array_equal`` on values and dtypes, with no tolerance.
"""

import math
import threading
import warnings

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from test_properties_compositions import programs_and_inputs

import tinygrad_np as tg
from tinygrad_np.jit import ConcretizationTypeError

# --- shared by the tests -------------------------------------------------------------------------


def assert_bitwise_equal(a, b):
    """Same pytree structure, and every leaf the same type, dtype, shape and bits."""
    a_leaves, a_def = tg.tree_flatten(a)
    b_leaves, b_def = tg.tree_flatten(b)
    assert a_def == b_def
    for x, y in zip(a_leaves, b_leaves, strict=True):
        assert type(x) is type(y), (type(x), type(y))
        if isinstance(x, np.ndarray | np.generic):
            assert x.dtype == y.dtype and np.shape(x) == np.shape(y)
            assert np.array_equal(x, y, equal_nan=True), (x, y)
        else:
            assert x == y


def copy_tree(tree):
    return tg.tree_map(lambda x: x.copy() if isinstance(x, np.ndarray) else x, tree)


def mlp_params(rng, dtype=np.float32):
    shapes = {"W1": (784, 128), "b1": (1, 128), "W2": (128, 10), "b2": (1, 10)}
    return {
        k: (rng.standard_normal(s) * (np.sqrt(2 / s[0]) if k[0] == "W" else 0.1)).astype(dtype)
        for k, s in shapes.items()
    }


def mlp_loss(params, x, labels):
    hidden = tg.relu(tg.nn.linear(x, params["W1"], params["b1"]))
    return tg.nn.cross_entropy(tg.nn.linear(hidden, params["W2"], params["b2"]), labels)


def sgd_step(params, x, labels):
    """The MLP's loss and new parameters after one SGD step of 0.1 (new arrays)."""
    loss, grads = tg.value_and_grad(mlp_loss)(params, x, labels)
    return {k: params[k] - 0.1 * grads[k] for k in params}, loss


def batches(rng, count, n=128, dtype=np.float32):
    return [(rng.random((n, 784), dtype=np.float64).astype(dtype), rng.integers(0, 10, n))
            for _ in range(count)]  # fmt: skip


# --- the training step ---------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "sgd_momentum", "adamw"])
def test_mlp_training_step_jitted_equals_eager_bitwise_for_20_steps(optimizer):
    rng = np.random.default_rng(0)
    opt = {
        "sgd": tg.optim.sgd(0.1),
        "adam": tg.optim.adam(tg.optim.exponential_decay(3e-3, 5, 0.85)),
        "sgd_momentum": tg.optim.sgd(0.05, momentum=0.9, nesterov=True),
        "adamw": tg.optim.adamw(1e-3, weight_decay=1e-2),
    }[optimizer]
    loss_and_grads = tg.value_and_grad(mlp_loss)

    def step(params, state, x, labels):
        loss, grads = loss_and_grads(params, x, labels)
        updates, state = opt.update(grads, state, params)
        return tg.optim.apply_updates(params, updates), state, loss

    jitted = tg.jit(step)
    params = mlp_params(rng)
    eager = (params, opt.init(params))
    traced = (copy_tree(params), opt.init(params))
    for x, labels in batches(rng, 20):
        *eager, eager_loss = step(*eager, x, labels)
        *traced, traced_loss = jitted(*traced, x, labels)
        assert_bitwise_equal((eager, eager_loss), (traced, traced_loss))
    assert jitted.traces == 1


def test_in_place_sgd_inside_the_jitted_step_updates_the_callers_arrays_as_eager():
    rng = np.random.default_rng(1)
    loss_and_grads = tg.value_and_grad(mlp_loss)

    def step(params, x, labels):
        loss, grads = loss_and_grads(params, x, labels)
        for k in params:
            params[k] -= 0.1 * grads[k]
        return loss

    jitted = tg.jit(step)
    eager, traced = mlp_params(rng), None
    traced = copy_tree(eager)
    arrays = dict(traced)  # the caller's own arrays, updated in place by every call
    for x, labels in batches(rng, 20):
        assert_bitwise_equal(step(eager, x, labels), jitted(traced, x, labels))
        assert_bitwise_equal(eager, traced)
    assert all(traced[k] is arrays[k] for k in arrays)


def test_full_batch_float64_step_is_bitwise_equal():
    rng = np.random.default_rng(2)
    jitted = tg.jit(sgd_step)
    eager = traced = mlp_params(rng, np.float64)
    for x, labels in batches(rng, 3, n=1000, dtype=np.float64):
        eager, eager_loss = sgd_step(eager, x, labels)
        traced, traced_loss = jitted(traced, x, labels)
        assert_bitwise_equal((eager, eager_loss), (traced, traced_loss))


def small_cnn_loss(params, x, labels, key):
    """Every sliding-window layer: padded and strided convolutions, both poolings (one with
    overlapping windows and an odd size), a transposed convolution, dropout."""
    h = tg.nn.conv2d(x, params["c1"], params["b1"], stride=1, padding=1)  # (n, 4, 9, 9)
    h = tg.relu(tg.nn.max_pool2d(h, 3, stride=2))  # overlapping windows: (n, 4, 4, 4)
    h = tg.nn.conv_transpose2d(h, params["t"], stride=2)  # (n, 3, 9, 9)
    h = tg.nn.conv2d(h, params["c2"], stride=(2, 1), padding=(0, 1))  # (n, 5, 4, 9)
    h = tg.nn.avg_pool2d(tg.relu(h), 2)  # (n, 5, 2, 4)
    h = tg.nn.max_pool2d(h, (2, 2))  # windows that tile: (n, 5, 1, 2)
    h = tg.nn.dropout(h.reshape(len(h), -1), 0.25, key)
    return tg.nn.cross_entropy(tg.nn.linear(h, params["w"], params["bw"]), labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("budget", [None, 1], ids=["one chunk", "one image per chunk"])
def test_cnn_training_step_jitted_equals_eager_bitwise(dtype, budget, monkeypatch):
    if budget is not None:  # the convolutions' chunked path (unfolded matrices over budget)
        monkeypatch.setattr(tg.conv, "UNFOLD_BUDGET_BYTES", budget)
    rng = np.random.default_rng(5)
    shapes = {"c1": (4, 2, 3, 3), "b1": (4,), "t": (4, 3, 3, 3), "c2": (5, 3, 3, 3),
              "w": (10, 10), "bw": (10,)}  # fmt: skip
    params = {k: (0.5 * rng.standard_normal(s)).astype(dtype) for k, s in shapes.items()}
    opt = tg.optim.adam(1e-2)
    loss_and_grads = tg.value_and_grad(small_cnn_loss)

    def step(params, state, x, labels, key):
        loss, grads = loss_and_grads(params, x, labels, key)
        updates, state = opt.update(grads, state, params)
        return tg.optim.apply_updates(params, updates), state, loss

    jitted = tg.jit(step)
    eager = (params, opt.init(params))
    traced = (copy_tree(params), opt.init(params))
    for i in range(6):
        x = rng.standard_normal((6, 2, 9, 9)).astype(dtype)
        if i % 2:  # ties for the max poolings' choice, recomputed at every call
            x = np.round(x)
        labels, key = rng.integers(0, 10, 6), tg.random.key(i)
        *eager, eager_loss = step(*eager, x, labels, key)
        *traced, traced_loss = jitted(*traced, x, labels, key)
        assert_bitwise_equal((eager, eager_loss), (traced, traced_loss))
    assert jitted.traces == 1


@pytest.mark.filterwarnings("error")  # inf * 0 is silenced inside, at the trace and replays
def test_max_pooling_with_nan_inputs_and_infinite_cotangents_replays_bitwise():
    def pulled(x, g):
        out, pull = tg.vjp(lambda x: tg.nn.max_pool2d(x, 2), x)
        return out, pull(g)

    jitted = tg.jit(pulled)
    rng = np.random.default_rng(6)
    for i in range(4):  # finite calls and calls with nan inputs and inf cotangents, mixed
        x, g = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 2, 2))
        if i % 2:
            x[0, 1, :2, :2] = [[1.0, np.nan], [np.nan, 0.0]]
            g[1, 2, 1, 0] = -np.inf
        out, grad = jitted(x, g)
        assert_bitwise_equal((out, grad), pulled(x, g))
        # the nan window's maximum is nan; the inf reaches its window's chosen element only
        assert np.isnan(out).sum() == np.isinf(grad).sum() == i % 2
        assert not np.isnan(grad).any()


# --- reordering: programs whose large arrays can die sooner -----------------------------------

N = 384  # (N, N) float64 arrays are 1.1 MiB: large enough for the scheduler to move steps

KINDS = ["scale", "matmul", "add_in_place", "setitem", "copyto", "transpose", "reverse", "sum",
         "tanh_out", "clip_out_by_position", "cumsum_out_by_position"]  # fmt: skip
INDEX = st.integers(0, 99)
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(KINDS), INDEX, INDEX, st.integers(0, N - 8)), min_size=1, max_size=12
).map(tuple)


def run_operations(operations, a, b):
    """A straight-line program over a pool of (N, N) arrays that starts with the arguments:
    new arrays, views, and writes (in place, through views, by np.copyto) into any of them,
    the arguments included."""
    pool, sums = [a, b], []
    for name, i, j, k in operations:
        x, y = pool[i % len(pool)], pool[j % len(pool)]
        if name == "scale":
            pool.append(x * 0.5)
        elif name == "matmul":
            pool.append(x @ y / N)
        elif name == "add_in_place":
            x += y
        elif name == "setitem":
            x[k : k + 8] = y[N - 8 - k : N - k]
        elif name == "copyto":
            np.copyto(x[:, k : k + 8], y[:, :8])
        elif name == "transpose":
            pool.append(x.T)
        elif name == "reverse":
            pool.append(x[::-1])
        elif name == "sum":
            sums.append(x.sum())
        elif name == "clip_out_by_position":
            y.clip(-1.0, 1.0, x)
        elif name == "cumsum_out_by_position":
            np.cumsum(y, 0, None, x)
        else:
            np.tanh(y, out=x)
    return sums, pool[-1].copy()


@given(operations=OPERATIONS, seed=st.integers(0, 2**16))
# b * 0.5 makes a MiB, so the scheduler runs it late: after a += c, which changes b if b is a
@example(operations=(("scale", 0, 0, 0), ("scale", 1, 0, 0), ("add_in_place", 0, 2, 0)), seed=0)
def test_reordered_programs_read_and_write_what_eager_execution_does(operations, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((N, N)), rng.standard_normal((N, N))
    eager_args, traced_args = (a.copy(), b.copy()), (a.copy(), b.copy())
    jitted = tg.jit(run_operations, static_argnums=0)
    assert_bitwise_equal(jitted(operations, *traced_args), run_operations(operations, *eager_args))
    assert_bitwise_equal(traced_args, eager_args)  # the same writes into the arguments
    again = (a.copy(), b.copy())  # the replay, not the trace
    assert_bitwise_equal(jitted(operations, *again), run_operations(operations, a, b))
    assert_bitwise_equal(again, (a, b))
    for _ in range(2):  # one array as both arguments: writes into a are writes into b
        eager_one, traced_one = a.copy(), a.copy()
        eager = run_operations(operations, eager_one, eager_one)
        assert_bitwise_equal(jitted(operations, traced_one, traced_one), eager)
        assert_bitwise_equal(traced_one, eager_one)


def test_the_mlp_step_at_full_batch_plans_less_memory_than_eager_execution_peaks_at():
    import tracemalloc

    rng = np.random.default_rng(8)
    params = mlp_params(rng, np.float64)
    ((x, labels),) = batches(rng, 1, n=6000, dtype=np.float64)
    jitted = tg.jit(sgd_step)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sgd_step(params, x, labels)
        eager_peak = tracemalloc.get_traced_memory()[1] - before
        jitted(params, x, labels)  # the trace
        tracemalloc.reset_peak()
        jitted(params, x, labels)
        jit_held_and_peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    # The hidden layer's activations (6000 x 128 float64, 5.9 MiB) die before its cotangent
    # is made, while eager execution keeps them alive through it. Measured: 4.5 MiB less; at
    # least half of them, since the jitted function also holds its program (Python objects,
    # and the labels' row index) and allocates its two label gathers per call.
    hidden = 6000 * 128 * 8
    assert jit_held_and_peak < eager_peak - hidden / 2


# --- random programs -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@given(data=st.data())
def test_random_programs_and_their_gradients_replay_bitwise(dtype, data):
    program, inputs = data.draw(programs_and_inputs(dtype), label="program, inputs")
    argnums = tuple(range(len(inputs)))

    def f(*xs):
        value, grads = tg.value_and_grad(lambda *ys: tg.sum(program(*ys)), argnums)(*xs)
        return value, grads, program(*xs)

    jitted = tg.jit(f)
    assert_bitwise_equal(f(*inputs), jitted(*inputs))  # the tracing call
    # Other values of the same shapes: the replay, with masks and branches of where, relu,
    # max and clip recomputed (nothing of the first call's values is kept).
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    others = tuple((rng.standard_normal(x.shape) * 2).astype(dtype) for x in inputs)
    with np.errstate(all="ignore"):
        expected = f(*others)
        assert_bitwise_equal(expected, jitted(*others))
    assert jitted.traces == 1


@given(
    shapes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_new_shapes_retrace_and_each_program_replays_bitwise(shapes, seed):
    rng = np.random.default_rng(seed)

    def f(x, w):
        return tg.value_and_grad(lambda x, w: tg.sum(tg.tanh(x @ w) * (x @ w > 0)), (0, 1))(x, w)

    jitted = tg.jit(f, cache_size=len(shapes))
    for n, m in shapes + shapes:  # the second time round, every signature is cached
        x, w = rng.standard_normal((n, m)), rng.standard_normal((m, 3)).astype(np.float32)
        assert_bitwise_equal(f(x, w), jitted(x, w))
    assert jitted.traces == len(set(shapes))


def test_the_cache_keeps_the_most_recently_used_signatures():
    jitted = tg.jit(lambda x: x * 2, cache_size=2)
    for n in (1, 2, 3, 3, 2):  # 1 is the least recently used when 3 arrives
        jitted(np.ones(n))
    assert jitted.traces == 3
    jitted(np.ones(1))
    assert jitted.traces == 4


def test_dtype_layout_python_numbers_and_structure_are_part_of_the_signature():
    jitted = tg.jit(lambda x, scale: x * scale)
    x = np.arange(6.0).reshape(2, 3)
    for args in [(x, 2.0), (x, 2.0), (x, 3.0), (x.astype(np.float32), 2.0), (x.T, 2.0)]:
        assert_bitwise_equal(args[0] * args[1], jitted(*args))
    assert jitted.traces == 4
    assert_bitwise_equal(jitted(x, np.float32(2)), x * np.float32(2))
    assert_bitwise_equal(jitted(x, scale=np.float32(2)), x * np.float32(2))


# --- what a caller gets back ---------------------------------------------------------------------


def test_returned_arrays_survive_later_calls():
    def f(x):
        y = np.exp(x)
        z = y * 2
        return {"y": y, "z": z, "sum": z.sum(axis=0), "constant": np.ones(2), "view": z.T}

    jitted = tg.jit(f)
    kept = [jitted(np.full((2, 3), float(i))) for i in range(4)]
    for i, result in enumerate(kept):
        assert_bitwise_equal(result, f(np.full((2, 3), float(i))))
    kept[0]["constant"][0] = 5.0  # a constant returned is the caller's own copy
    assert jitted(np.zeros((2, 3)))["constant"][0] == 1.0


def test_results_are_bitwise_those_of_the_tracing_call_and_of_eager_with_python_outputs():
    def f(x, n):
        return x[:n] + 1, n, None, "tag"

    jitted = tg.jit(f, static_argnums=1)
    x = np.arange(5.0)
    assert_bitwise_equal(jitted(x, 2), f(x, 2))
    assert_bitwise_equal(jitted(x + 1, 2), f(x + 1, 2))
    assert_bitwise_equal(jitted(x, 3), f(x, 3))
    assert jitted.traces == 2


def test_donated_arguments_may_be_overwritten_and_others_never_are():
    rng = np.random.default_rng(3)
    params = mlp_params(rng)
    eager = copy_tree(params)
    jitted = tg.jit(sgd_step, donate_argnums=0)
    for x, labels in batches(rng, 5):
        x_before = x.copy()
        eager, eager_loss = sgd_step(eager, x, labels)
        params, loss = jitted(params, x, labels)
        assert_bitwise_equal((eager, eager_loss), (params, loss))
        assert np.array_equal(x, x_before)


N_SHARED = 150_000  # 1.1 MiB of float64: large enough for the scheduler to move its steps


def arguments_sharing_memory(how):
    """Two float64 vectors of N_SHARED elements, with distinct values, that share memory so."""
    base = np.arange(2.0 * N_SHARED + 1)
    if how == "separate":
        return base[:N_SHARED].copy(), base[N_SHARED:-1].copy()
    if how == "the same array":
        a = base[:N_SHARED].copy()
        return a, a
    if how == "overlapping views":
        return base[1 : N_SHARED + 1], base[:N_SHARED]
    if how == "one buffer, two memoryviews":
        memory = bytearray(base[:N_SHARED].tobytes())
        return tuple(np.frombuffer(memoryview(memory), np.float64) for _ in range(2))
    return base[:N_SHARED], base[N_SHARED:-1]  # disjoint views of one array


def write_a_then_read_b(a, b):
    doubled = b * 2.0  # an array of a MiB and more: the scheduler would make it late
    a[::2] = -1.0
    a += 0.5
    np.copyto(a[1::4], 7.0)
    return doubled.sum(), b * a


SHARING = [
    "separate", "the same array", "overlapping views", "disjoint views",
    "one buffer, two memoryviews",
]  # fmt: skip


@pytest.mark.parametrize("first", SHARING)
def test_arguments_that_share_memory_replay_as_eager_execution(first):
    jitted = tg.jit(write_a_then_read_b)
    for how in [first, *SHARING, first]:  # traced with one sharing, replayed with each
        eager_args, jit_args = arguments_sharing_memory(how), arguments_sharing_memory(how)
        eager = write_a_then_read_b(*eager_args)
        assert_bitwise_equal(jitted(*jit_args), eager)
        assert_bitwise_equal(jit_args, eager_args)  # the arguments' final contents too
    assert jitted.traces == 2  # one program for separate arrays, one for arrays of one memory


# --- what a trace refuses ------------------------------------------------------------------------


def test_python_control_flow_on_a_traced_value_raises_naming_the_operation():
    def branchy(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(ConcretizationTypeError, match=r"bool\(\).*np\.greater"):
        tg.jit(branchy)(np.ones(3))
    assert issubclass(ConcretizationTypeError, TypeError)

    def through_a_gradient(x):
        loss, g = tg.value_and_grad(lambda x: tg.sum(x * x))(x)
        return g if loss > 1 else -g

    with pytest.raises(ConcretizationTypeError, match=r"bool\(\)"):
        tg.jit(through_a_gradient)(np.ones(3))


@pytest.mark.parametrize(
    ("convert", "named"),
    [
        (float, r"float\(\)"),
        (int, r"int\(\)"),
        (lambda x: range(x), r"__index__"),
        (lambda x: math.exp(x), r"float\(\)"),
        (np.asarray, r"conversion to an ndarray"),
        (lambda x: np.array([x, x]), r"conversion to an ndarray"),
        (lambda x: x.item(), r"\.item\(\)"),
        (lambda x: x.tolist(), r"\.tolist\(\)"),
        (lambda x: np.ones(3)[x.astype(int)], r"conversion to an ndarray|__index__"),
    ],
)
def test_scalar_conversions_of_traced_values_raise(convert, named):
    with pytest.raises(ConcretizationTypeError, match=named):
        tg.jit(lambda x: convert(x.sum()))(np.ones(3))


def test_control_flow_on_shapes_and_static_arguments_is_fine():
    def f(x, mode):
        if x.shape[0] > 2 and mode == "double":
            return x * 2
        return x

    jitted = tg.jit(f, static_argnums=1)
    assert_bitwise_equal(jitted(np.ones(3), "double"), np.full(3, 2.0))
    assert_bitwise_equal(jitted(np.ones(3), "keep"), np.ones(3))
    assert_bitwise_equal(jitted(np.ones(2), "double"), np.ones(2))


@pytest.mark.parametrize(
    "masked",
    [
        lambda x: x * (x > 0),
        lambda x: np.where(x > 0, x, 0.1 * x),
        lambda x: tg.relu(x),
        lambda x: tg.grad(lambda x: tg.sum(tg.relu(x) ** 2))(x),
        lambda x: tg.grad(lambda x: tg.sum(tg.where(x > 0, x, -x)))(x),
        lambda x: tg.grad(lambda x: tg.sum(tg.max(x, axis=0)))(x),
    ],
    ids=["mask-product", "np-where", "relu", "relu-grad", "tg-where-grad", "max-grad"],
)
def test_masks_are_recomputed_at_every_call(masked):
    jitted = tg.jit(masked)
    first = np.array([[1.0, -2.0], [3.0, 0.5]])
    second = -first  # every entry on the other side: the first call's mask would be all wrong
    assert_bitwise_equal(jitted(first), masked(first))
    assert_bitwise_equal(jitted(second), masked(second))
    assert not np.array_equal(jitted(second), masked(first))


@pytest.mark.parametrize(
    ("select", "named"),
    [
        (lambda x: x[x > 0], r"traced boolean mask \(x\[mask\]\)"),
        (lambda x: x[1:][x[1:] > 0, ...], "traced boolean mask"),
        (lambda x: tg.sum(tg.Tensor(x)[x > 0]), "traced boolean mask"),
        (lambda x: x[np.nonzero(x > 0)], "np.nonzero"),
        (lambda x: (x > 0).nonzero(), "ndarray.nonzero"),
        (lambda x: np.flatnonzero(x), "np.flatnonzero"),
        (lambda x: np.argwhere(x), "np.argwhere"),
        (lambda x: np.where(x > 0), "np.where"),
        (lambda x: np.extract(x > 0, x), "np.extract"),
        (lambda x: np.compress(x > 0, x), "np.compress"),
        (lambda x: np.unique(x), "np.unique"),
        (lambda x: np.unique_values(x), "np.unique_values"),
        (lambda x: np.repeat(x, (x > 0).astype(int)), "np.repeat"),
        (lambda x: x.repeat((x > 0).astype(int)), "ndarray.repeat"),
        (lambda x: np.delete(x, (x > 0).astype(int)), "np.delete"),
        (lambda x: np.bincount((x > 0).astype(int)), "np.bincount"),
        (lambda x: np.trim_zeros(x * (x > 0)), "np.trim_zeros"),
        (lambda x: np.setdiff1d(x, [1.0]), "np.setdiff1d"),
        (lambda x: np.histogram(x, bins="auto")[0], "np.histogram"),
    ],
)
def test_results_whose_shape_depends_on_the_values_are_refused(select, named):
    # Replayed with a shape traced once, x[x > 0] of another count of positive values came
    # back in the traced shape (broadcast into it, or its size baked in): wrong, with no error.
    with pytest.raises(ConcretizationTypeError, match=named) as caught:
        tg.jit(select)(np.array([1.0, -2.0, 3.0, 0.0]))
    assert "depends on the values" in str(caught.value)


def test_shapes_fixed_by_static_arguments_and_masks_are_fine():
    mask = np.array([True, False, True, True])  # a constant: its count is part of the program

    def f(x):
        y = x.copy()
        y[x < 0] = 0.0  # a write through a traced mask keeps y's shape
        return (
            x[mask], y, np.repeat(x, 2), np.where(x > 0, x, 0.0), np.histogram(x, bins=3)[0],
            np.sum(x, where=x > 0),
        )  # fmt: skip

    jitted = tg.jit(f)
    for x in (np.array([1.0, -2.0, 3.0, 0.5]), np.array([-1.0, -2.0, -3.0, 4.0])):
        assert_bitwise_equal(jitted(x), f(x))
    assert jitted.traces == 1


def test_numpy_calls_the_tracer_cannot_record_are_refused():
    constant = np.zeros(3)

    def writes_a_constant(x):
        constant[...] += x
        return x

    def writes_out_a_constant(x):
        np.add(x, 1, out=constant)
        return x

    def unrecordable_method(x):
        return x.tobytes()

    def global_random_state(x):
        return x + np.random.standard_normal(3)  # noqa: NPY002

    for f, message in [
        (writes_a_constant, r"not traced"),
        (writes_out_a_constant, r"not traced"),
        (unrecordable_method, r"ndarray\.tobytes"),
        (global_random_state, r"global random state"),
    ]:
        with pytest.raises(TypeError, match=message):
            tg.jit(f)(np.ones(3))


def test_a_leaked_tracer_is_refused_later():
    leaked = []

    def leaks(x):
        leaked.append(x)
        return x + 1

    tg.jit(leaks)(np.ones(2))
    with pytest.raises(TypeError, match="leaked"):
        tg.jit(lambda y: y + leaked[0])(np.ones(2))


def test_argument_errors_name_the_problem():
    with pytest.raises(TypeError, match="callable"):
        tg.jit(3)
    with pytest.raises(TypeError, match=r"argument 1\['a'\]\[1\] is an unhashable set"):
        tg.jit(lambda x, opts: x)(np.ones(2), {"a": [np.ones(2), {1, 2}]})
    with pytest.raises(TypeError, match="static argument 1 must be hashable"):
        tg.jit(lambda x, opts: x, static_argnums=1)(np.ones(2), [1])
    with pytest.raises(ValueError, match="static and donated"):
        tg.jit(lambda x: x, static_argnums=0, donate_argnums=0)
    with pytest.raises(TypeError, match="Tensor"):
        tg.jit(lambda x: tg.Tensor(x))(np.ones(2))


def test_bad_labels_are_caught_at_every_replay():
    loss = tg.jit(tg.value_and_grad(mlp_loss))
    rng = np.random.default_rng(4)
    params = mlp_params(rng)
    ((x, labels),) = batches(rng, 1)
    loss(params, x, labels)
    for bad in (-1, 10):
        wrong = labels.copy()
        wrong[3] = bad
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
            loss(params, x, wrong)


# --- random numbers ------------------------------------------------------------------------------


def test_random_numbers_come_from_key_arguments_drawn_at_every_call():
    def f(x, key):
        return tg.nn.dropout(x, 0.5, key)

    jitted = tg.jit(f)
    x = np.ones((4, 8), np.float32)
    results = []
    for seed in range(3):
        key = tg.random.key(seed)
        results.append(jitted(x, key))
        assert_bitwise_equal(results[-1], f(x, key))
    assert not np.array_equal(results[0], results[1])


GLOBAL_RNG = np.random.default_rng(0)


def closes_over_a_generator():
    rng = np.random.RandomState(1)
    return lambda x: x + rng.normal(size=x.shape)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda x: tg.jit(lambda x, g: x + g.normal(size=3))(x, GLOBAL_RNG), "argument 1 is a"),
        (
            lambda x: tg.jit(lambda p: p["x"] + p["g"].random(3))({"x": x, "g": GLOBAL_RNG}),
            r"argument 0\['g'\] is a NumPy random Generator",
        ),
        (
            lambda x: tg.jit(lambda x, g: x + g.random(3), static_argnums=1)(x, GLOBAL_RNG),
            "static argument 1 is a NumPy random Generator",
        ),
        (lambda x: tg.jit(lambda x: x + GLOBAL_RNG.random(3))(x), "Generator 'GLOBAL_RNG'"),
        (lambda x: tg.jit(closes_over_a_generator())(x), "RandomState 'rng' it closes over"),
    ],
    ids=["argument", "leaf", "static", "global", "closure"],
)
def test_numpy_generators_are_refused_rather_than_their_draws_baked_in(call, named):
    # A Generator argument was a static leaf, and its draws constants of the program.
    with pytest.raises(TypeError, match=named) as caught:
        call(np.zeros(3))
    assert "would repeat the numbers" in str(caught.value)


def test_a_generator_read_but_not_drawn_from_is_fine():
    jitted = tg.jit(lambda x: x * 2.0 if GLOBAL_RNG is not None else x)
    assert_bitwise_equal(jitted(np.ones(3)), np.full(3, 2.0))


# --- floating-point error settings ---------------------------------------------------------------


def warnings_of(f, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f(*args)
    return [str(w.message) for w in caught]


def test_np_errstate_inside_the_function_is_replayed_and_elsewhere_the_callers_applies():
    def f(x):
        with np.errstate(divide="ignore"):
            reciprocal = 1 / x  # silenced by f itself, at every call
        return reciprocal, np.log(x)  # log(0) warns or raises as the caller says

    jitted = tg.jit(f)
    x = np.array([0.0, 2.0])
    for _ in range(3):  # the trace, then replays
        assert warnings_of(jitted, x) == warnings_of(f, x) == ["divide by zero encountered in log"]
    with np.errstate(divide="ignore"):
        assert warnings_of(jitted, x) == []
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError, match="in log"):
        jitted(x)
    assert "errstate(divide='ignore')" in jitted.source(x)
    assert jitted.source(x).count("errstate") == 1


# --- pure_callback -------------------------------------------------------------------------------


def test_pure_callback_runs_python_on_every_calls_values():
    def halvings(count):
        return 0.5 ** int(count), count + 1  # a Python float, and an array

    def f(x, count):
        rate, count = tg.pure_callback(halvings, count)
        return x * rate * 2.0, count  # rate stays a weak Python float: float32 stays float32

    jitted = tg.jit(f)
    x = np.ones(2, np.float32)
    for n in range(3):
        assert_bitwise_equal(jitted(x, np.array(n)), f(x, np.array(n)))
        assert jitted(x, np.array(n))[0].dtype == np.float32


@pytest.mark.parametrize(
    ("callback", "other"),
    [
        (
            lambda v: v[v > 0],
            r"a float64 array of shape \(1,\) where the traced call returned a float64 "
            r"array of shape \(3,\)",
        ),
        (lambda v: v.astype(np.float32) if v[0] > 0 else v, "a float64 array of shape"),
        (lambda v: float(v[0]) if v[0] > 0 else int(v[0]), "returned int where .* returned float"),
        (
            lambda v: (v, v) if v[0] > 0 else (v,),
            r"a tuple of \(a float64 array of shape \(4,\)\) where",
        ),
    ],
    ids=["shape", "dtype", "python-type", "structure"],
)
def test_a_callback_whose_result_changes_shape_dtype_or_type_raises_at_replay(callback, other):
    # A result of another shape was broadcast into the memory planned for the traced one.
    def f(x):
        r = tg.pure_callback(callback, x)
        return tg.tree_map(lambda leaf: np.exp(leaf * 2.0) + 1, r)

    jitted = tg.jit(f)
    first, second = np.array([1.0, 2.0, -1.0, 3.0]), np.array([-1.0, -2.0, -1.0, 3.0])
    assert_bitwise_equal(jitted(first), f(first))
    assert_bitwise_equal(jitted(first), f(first))  # a replay with the traced call's kinds
    with pytest.raises(TypeError, match=other):
        jitted(second)


def test_numpy_results_whose_shape_or_dtype_follow_the_values_are_checked_at_replay():
    def residuals(a, b):
        return np.linalg.lstsq(a, b)[1] * 2.0  # shape (1,) at full rank, (0,) below it

    def eigenvalues(m):
        return np.linalg.eigvals(m) * 2.0  # float64 if all are real, complex128 if not

    rng = np.random.default_rng(10)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal(5)
    low_rank = a.copy()
    low_rank[:, 2] = low_rank[:, 1]
    jitted = tg.jit(residuals)
    for _ in range(2):
        assert_bitwise_equal(jitted(a, b), residuals(a, b))
    with pytest.raises(TypeError, match=r"np\.linalg\.lstsq returned .* of shape \(0,\)"):
        jitted(low_rank, b)
    jitted = tg.jit(eigenvalues)
    real, rotation = np.diag([1.0, 2.0]), np.array([[0.0, -1.0], [1.0, 0.0]])
    for _ in range(2):
        assert_bitwise_equal(jitted(real), eigenvalues(real))
    with pytest.raises(TypeError, match=r"np\.linalg\.eigvals returned a complex128 array"):
        jitted(rotation)


def test_a_call_while_another_call_runs_raises_instead_of_sharing_its_memory():
    started, release = threading.Event(), threading.Event()

    def wait(v):
        started.set()
        assert release.wait(10)
        return v

    jitted = tg.jit(lambda x: tg.pure_callback(wait, x * 2.0) + 1.0)
    x = np.ones(3)
    release.set()
    jitted(x)  # the trace
    release.clear()
    other = threading.Thread(target=jitted, args=(x,))
    other.start()
    assert started.wait(10)
    with pytest.raises(RuntimeError, match="while another call of it was running"):
        jitted(x)
    release.set()
    other.join()
    assert_bitwise_equal(jitted(x), np.full(3, 3.0))  # and it runs again once that call is done


def test_arrays_built_from_lists_of_traced_values_replay_bitwise():
    import tinygrad_np.numpy as tnp

    def built(x):  # tg.array, tg.mean and NumPy's namespace of tinygrad_np, with constants
        return (
            tg.array([[x[0], 2.0], [x[1] * 3, x[2]]]),
            tg.mean([x[0], x[1]]),
            tnp.array([x[2], 1.0]),
        )

    def f(x):
        copied = tnp.array(x)  # a copy, as np.array makes: writing it leaves x alone
        copied[0] = 5.0
        return built(x), copied, x

    def loss(x):
        return sum(tg.sum(part**2) for part in built(x))

    jitted, gradient = tg.jit(f), tg.jit(tg.grad(loss))
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = rng.standard_normal(3).astype(np.float32)
        assert_bitwise_equal(jitted(x.copy()), f(x.copy()))
        assert_bitwise_equal(gradient(x), tg.grad(loss)(x))


def test_numpys_constructors_copy_a_traced_array_exactly_when_numpy_does():
    import tinygrad_np.numpy as tnp

    def f(x):
        tnp.asarray(x)[0] = 7.0  # the array itself: the write reaches x, as eagerly
        tnp.array(x, ndmin=2, copy=None)[0, 1] = 9.0  # a view: so does this one
        copied = tnp.array(x)  # a copy: this write does not
        copied[2] = 100.0
        converted = tnp.asanyarray(x, dtype=np.float32)  # a new dtype: a copy
        converted[2] = -1.0
        return x * 1.0, copied, converted

    jitted = tg.jit(f)
    for _ in range(3):
        x = np.array([1.0, 2.0, 3.0])
        assert_bitwise_equal(jitted(x.copy()), f(x.copy()))
    with pytest.raises(TypeError, match=r"np\.ascontiguousarray of an array that tg\.jit traces"):
        tg.jit(lambda x: tnp.ascontiguousarray(x))(np.ones(2))


def test_source_shows_the_program():
    jitted = tg.jit(lambda x, y: np.exp(x) @ y)
    text = jitted.source(np.ones((2, 2)), np.ones((2, 2)))
    assert "np.exp(v0" in text and "np.matmul(" in text


def test_an_array_constant_reads_as_it_was_when_each_step_used_it():
    def f(x):
        scratch = np.zeros(3)
        before = x + scratch
        scratch[0] = 5.0  # changed after a step read it: that step must still read zeros
        return before, x * scratch

    jitted = tg.jit(f)
    for value in (1.0, 2.0):
        assert_bitwise_equal(jitted(np.full(3, value)), f(np.full(3, value)))


WRITES_INTO_C = {
    "np.dot, out by position": lambda x, c: np.dot(x, x, c),
    "np.clip, out by position": lambda x, c: np.clip(c, 0.0, 1.0, c),
    "np.cumsum, out by position": lambda x, c: np.cumsum(x, 0, None, c),
    "np.take, out by position": lambda x, c: np.take(x, np.arange(len(x))[::-1], 0, c),
    "np.concatenate, out by position": lambda x, c: np.concatenate((x[:1], x[1:]), 0, c),
    "np.nan_to_num, in place": lambda x, c: np.nan_to_num(c, copy=False, nan=5.0),
    "ndarray.clip, out by position": lambda x, c: c.clip(0.0, 1.0, c),
    "ndarray.clip, out=": lambda x, c: c.clip(0.0, 1.0, out=c),
    "ndarray.round, out by position": lambda x, c: c.round(2, c),
    "ndarray.cumsum, out by position": lambda x, c: c.cumsum(0, None, c),
    "ndarray.sum, out=": lambda x, c: x.sum(axis=0, out=c[0]),
}


@pytest.mark.parametrize("write", WRITES_INTO_C.values(), ids=WRITES_INTO_C.keys())
def test_functions_and_methods_that_write_into_an_array_they_return_are_replayed(write):
    def f(x):
        c = x * 1.0
        c[0, 0] = np.nan
        before = c * 2.0  # a MiB and more: the scheduler would run it late, after the write
        write(x, c)
        return before, c

    jitted = tg.jit(f)
    rng = np.random.default_rng(9)
    for _ in range(3):  # the trace, then replays
        x = rng.standard_normal((N, N))
        assert_bitwise_equal(jitted(x), f(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("a_shape", "b_shape", "transpose"),
    [((128, 784), (784, 128), ""), ((128, 784), (128, 128), "a"), ((128, 10), (128, 10), "b"),
     ((128, 128), (128, 10), ""), ((1000, 784), (784, 128), "")],
)  # fmt: skip
def test_writing_into_a_planned_array_gives_the_same_bits(dtype, a_shape, b_shape, transpose):
    # The planner's premise: out= changes where a result goes, never how it is computed.
    rng = np.random.default_rng(5)
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    a, b = (a.T if "a" in transpose else a), (b.T if "b" in transpose else b)
    product = np.matmul(a, b)
    assert np.array_equal(np.matmul(a, b, out=np.empty_like(product)), product)
    for axis in (0, 1):
        total = np.add.reduce(product, axis=axis)
        assert np.array_equal(np.add.reduce(product, axis=axis, out=np.empty_like(total)), total)
    expected = np.tanh(product)
    np.tanh(product, out=product)  # an elementwise ufunc over its own operand
    assert np.array_equal(product, expected)


@pytest.mark.parametrize(
    "view",
    [
        lambda b: np.lib.stride_tricks.sliding_window_view(b, 3)[:, 0],
        lambda b: np.broadcast_to(b[:8], (2, 8))[1],
        lambda b: b.reshape(2, 5).T.reshape(10)[:8],
    ],
    ids=["sliding_window_view", "broadcast_to", "reshape-transpose"],
)
def test_a_view_keeps_its_array_alive_until_its_last_read(view):
    # b's last direct use is where the view is made; c, made after, must not get b's memory
    # while the view still reads it (sliding_window_view's reaches b through a DummyArray)
    def f(a):
        b = a * 2.0
        w = view(b)
        c = a + 1.0
        return w * c[:-2]

    jitted = tg.jit(f)
    a = np.arange(10.0)
    for _ in range(2):  # the trace, then the replay
        assert_bitwise_equal(jitted(a), f(a))


def test_copies_zeros_and_permuted_layouts_are_planned_and_replay_bitwise():
    def f(x):
        batch_last = x.transpose(1, 2, 0) * 2.0  # dense, neither C- nor F-ordered
        total = np.zeros_like(x, shape=(4, 3))
        total += np.copy(batch_last, order="K").sum(axis=2)
        single = batch_last.astype(np.float32) + np.float32(1)
        return total.sum() + single.astype(np.float64).sum()

    jitted = tg.jit(f)
    rng = np.random.default_rng(9)
    for _ in range(3):
        x = rng.standard_normal((5, 4, 3))
        assert_bitwise_equal(jitted(x), f(x))
    source = jitted.source(x)
    assert "np.multiply(v1, c0, out=m" in source  # the transposed product
    assert "np.copyto(m1, 0)" in source  # the zeros
    assert source.count("casting='unsafe')") == 3, source  # np.copy and both astypes


def test_the_planner_reuses_arrays_and_writes_donated_arguments_in_place():
    rng = np.random.default_rng(6)
    params = mlp_params(rng)
    ((x, labels),) = batches(rng, 1)
    source = tg.jit(sgd_step, donate_argnums=0).source(copy_tree(params), x, labels)
    assert "out=m0" in source and source.count("np.empty_like") == 0
    for k in range(4):  # every new parameter is written over the donated one
        assert f"out=v{k})" in source
    kept = tg.jit(sgd_step).source(copy_tree(params), x, labels)
    assert all(f"out=v{k})" not in kept for k in range(4))


def test_vjp_jvp_and_hessian_vector_products_replay_bitwise():
    def f(x, w):
        return tg.tanh(x @ w) * tg.relu(x @ w)

    def pulled_and_pushed(x, w, cotangent, tangent_x, tangent_w):
        out, pull = tg.vjp(f, x, w)
        _, pushed = tg.jvp(f, (x, w), (tangent_x, tangent_w))
        curvature = tg.hvp(lambda x: tg.sum(f(x, w) ** 2), x, tangent_x)
        return out, pull(cotangent), pushed, curvature

    jitted = tg.jit(pulled_and_pushed)
    rng = np.random.default_rng(7)
    for _ in range(3):
        args = [rng.standard_normal(s) for s in [(3, 4), (4, 2), (3, 2), (3, 4), (4, 2)]]
        assert_bitwise_equal(jitted(*args), pulled_and_pushed(*args))
    assert jitted.traces == 1


def test_numpy_functions_writing_out_into_a_traced_array_are_recorded():
    def sums_into(x, total):
        np.sum(x, axis=0, out=total)
        np.cumsum(x[0], out=total)  # overwritten: the program keeps the order
        return total

    jitted = tg.jit(sums_into)
    for value in (1.0, 2.0):
        x, total = np.full((2, 3), value), np.zeros(3)
        expected = sums_into(x, np.zeros(3))
        assert_bitwise_equal(jitted(x, total), expected)
        assert_bitwise_equal(total, expected)
    with pytest.raises(TypeError, match="not traced"):
        tg.jit(lambda x: np.sum(x, axis=0, out=np.zeros(3)))(np.ones((2, 3)))


def test_a_jitted_function_called_inside_another_trace_becomes_part_of_its_program():
    inner = tg.jit(lambda x: tg.grad(lambda x: tg.sum(tg.tanh(x) ** 2))(x))

    def outer(x):
        return inner(x) * 2 + inner(x + 1)

    jitted = tg.jit(outer)
    for value in (0.5, -1.5):
        x = np.full((2, 2), value)
        assert_bitwise_equal(jitted(x), outer(x))
    assert jitted.traces == 1 and inner.traces == 1  # (traced by the eager calls of outer)
