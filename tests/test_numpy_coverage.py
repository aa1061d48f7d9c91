"""Every differentiable NumPy function, checked the same way, from one table (tests/numpy_cases.py).

For each case (a NumPy callable and a way to draw its arguments):

* its derivatives of order 1 and 2, taken through NumPy dispatch (``np.sin(t)`` on a
  traced Tensor), agree with float64 finite differences, in float64 and float32;
* float32 arguments give a float32 value and float32 gradients;
* the ``tg.*`` function and the Tensor method (where NumPy has one) give NumPy's value;
* where PyTorch or JAX is installed, values and vector-Jacobian products agree with theirs
  in float64 (skipped when absent).

A NumPy function registered in ``NUMPY_OPS`` (``numpy=[...]`` on an op) without a case
fails :func:`test_every_registered_numpy_function_has_a_case`: a new op cannot go untested.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy_cases import OpCase, all_cases, default_argnums, qualified_name

import tinygrad_np as tg
from tinygrad_np.tensor import NUMPY_OPS
from tinygrad_np.testing import check_grads

CASES = all_cases()
cases = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
# The dtype and spelling properties compare values that do not depend on where the inputs
# fall, so a quarter of the profile's examples (10 by default, 125 thorough) draws every
# shape class; the derivative properties, which do depend on it, get all of them. Per case
# the four properties cost about 1 s on the 2-core machine, and there are 100 cases or more.
fewer_examples = settings(max_examples=max(10, settings.default.max_examples // 4))


def _split(case: OpCase, args: tuple):
    """The differentiable positions, and ``f(*those)`` calling the function with the rest."""
    nums = case.argnums if case.argnums is not None else default_argnums(args)

    def call(function, *diff):
        full = list(args)
        for n, value in zip(nums, diff, strict=True):
            full[n] = value
        return full

    return nums, call


def _plain(result):
    """``result`` with a named tuple (NumPy's ``EighResult``) as a tuple: a pytree keeps a
    named tuple as one leaf."""
    return tuple(result) if isinstance(result, tuple) else result


def _compared(case: OpCase, result):
    """What the derivative and differential properties compare of ``result``."""
    return _plain(case.outputs(result) if case.outputs is not None else result)


def _tg_function(case: OpCase):
    if case.tg_function is None:
        return None
    if case.tg_function == "default":
        module = tg
        *path, name = qualified_name(case.function).split(".")
        for part in path:
            module = getattr(module, part)
        return getattr(module, name)
    return case.tg_function


def _check_derivatives(case, dtype, data):
    args, statics = case.draw(data, dtype)
    nums, call = _split(case, args)
    assert nums, f"{case.name}: the case draws no differentiable argument"

    def f(*diff):
        return _compared(case, case.function(*call(case.function, *diff), **statics))

    check_grads(f, tuple(args[n] for n in nums), order=case.order)


@cases
@given(data=st.data())
def test_derivatives_through_numpy_dispatch_match_finite_differences(case, data):
    _check_derivatives(case, np.float64, data)


# The same in float32 with a quarter of the examples: what float32 adds is its rounding and
# dtype handling (a Python-float constant promoting a gradient, a VJP overflowing), which a
# few shapes show; the derivatives themselves get every example in float64 above.
@cases
@fewer_examples
@given(data=st.data())
def test_float32_derivatives_through_numpy_dispatch_match_finite_differences(case, data):
    if not case.float32:
        pytest.skip("float32 excluded for this case (see the case's comment)")
    _check_derivatives(case, np.float32, data)


@cases
@fewer_examples
@given(data=st.data())
def test_float32_arguments_give_float32_values_and_gradients(case, data):
    if not case.float32:
        pytest.skip("float32 excluded for this case (see the case's comment)")
    args, statics = case.draw(data, np.float32)
    nums, call = _split(case, args)

    def f(*diff):
        return _compared(case, case.function(*call(case.function, *diff), **statics))

    out, vjp_fn = tg.vjp(f, *(args[n] for n in nums))
    value_dtype = np.dtype(
        np.float32
        if case.dtype_argument is None
        else args[case.dtype_argument]
        if isinstance(case.dtype_argument, int)
        else statics[case.dtype_argument]
    )
    for leaf in tg.tree_leaves(out):
        assert np.result_type(leaf) == value_dtype, f"{case.name}: value dtype {leaf.dtype}"
    cotangent = tg.tree_map(np.ones_like, out)
    for g in tg.tree_leaves(vjp_fn(cotangent)):
        assert np.result_type(g) == np.float32, f"{case.name}: gradient dtype {g.dtype}"


@cases
@fewer_examples
@given(data=st.data())
def test_tg_function_and_tensor_method_give_numpys_value(case, data):
    args, statics = case.draw(data, np.float64)
    expected = _plain(case.function(*args, **statics))
    spellings = []
    tg_function = _tg_function(case)
    if tg_function is not None:
        spellings.append(("tg." + qualified_name(case.function), tg_function))
    if case.method is not None:
        spellings.append(
            (f"Tensor.{case.method}", lambda x, *rest, **kw: _method(case, x, rest, kw))
        )
    nums, call = _split(case, args)
    for label, function in spellings:
        on_arrays = _plain(function(*args, **statics))
        for got, want in zip(tg.tree_leaves(on_arrays), tg.tree_leaves(expected), strict=True):
            np.testing.assert_allclose(
                tg.stop_gradient(got), want, rtol=1e-12, atol=1e-12, err_msg=label
            )

        def traced(*diff, function=function, label=label):
            full = call(function, *diff)
            if label.startswith("Tensor."):
                full[0] = full[0] if isinstance(full[0], tg.Tensor) else tg.Tensor(full[0])
            return _plain(function(*full, **statics))

        out, _ = tg.vjp(traced, *(args[n] for n in nums))
        for got, want in zip(tg.tree_leaves(out), tg.tree_leaves(expected), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=label)


def _method(case: OpCase, x, rest, statics):
    """``x.method(*rest, **statics)``, or ``x.property`` for one such as ``mT``; the statics
    named by ``case.method_positional`` go by position (``x.swapaxes(0, 1)``)."""
    attribute = getattr(x, case.method)
    if not callable(attribute):
        assert not rest and not statics, f"{case.name}: a property takes no arguments"
        return attribute
    positional = [statics[name] for name in case.method_positional]
    keywords = {k: v for k, v in statics.items() if k not in case.method_positional}
    return attribute(*rest, *positional, **keywords)


def _differential(case: OpCase, data, library: str):
    """Values and VJPs (random cotangent) of the case against ``library``'s function, float64."""
    args, statics = case.draw(data, np.float64)
    nums, call = _split(case, args)

    def f(*diff):
        return _compared(case, case.function(*call(case.function, *diff), **statics))

    out, vjp_fn = tg.vjp(f, *(args[n] for n in nums))
    rng = np.random.default_rng(0)
    cotangent = tg.tree_map(lambda o: rng.standard_normal(np.shape(o)), out)
    grads = vjp_fn(cotangent)
    if library == "torch":
        torch = pytest.importorskip("torch")
        function = case.torch(torch)
        inputs = [
            tg.tree_map(lambda a, i=i: torch.tensor(a, requires_grad=i in nums), a)
            if isinstance(a, np.ndarray | list | tuple)
            else a
            for i, a in enumerate(args)
        ]
        theirs = function(*inputs, **statics)
        flat = theirs if isinstance(theirs, tuple | list) else (theirs,)
        cts = tg.tree_leaves(cotangent)
        total = sum((t * torch.tensor(c)).sum() for t, c in zip(flat, cts, strict=True))
        differentiated = [leaf for n in nums for leaf in tg.tree_leaves(inputs[n])]
        their_grads = torch.autograd.grad(total, differentiated, allow_unused=True)
        their_values = [t.detach().numpy() for t in flat]
        their_grads = [
            np.zeros(tuple(x.shape)) if g is None else g.numpy()
            for x, g in zip(differentiated, their_grads, strict=True)
        ]
    else:
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        function = case.jax(jax.numpy)

        def g(*diff):
            return function(*call(function, *diff), **statics)

        theirs, their_vjp = jax.vjp(g, *(args[n] for n in nums))
        their_values = [np.asarray(t) for t in tg.tree_leaves(theirs)]
        their_grads = [
            np.asarray(t)
            for t in jax.tree_util.tree_leaves(
                their_vjp(
                    type(theirs)(cotangent) if isinstance(theirs, tuple | list) else cotangent
                )
            )
        ]
    for got, want in zip(tg.tree_leaves(out), their_values, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"{case.name} value")
    for got, want in zip(tg.tree_leaves(grads), their_grads, strict=True):
        np.testing.assert_allclose(
            got, want, rtol=1e-9, atol=1e-12, err_msg=f"{case.name} gradient"
        )


TORCH_CASES = [c for c in CASES if c.torch is not None]
JAX_CASES = [c for c in CASES if c.jax is not None]


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.name for c in TORCH_CASES])
@given(data=st.data())
def test_values_and_gradients_agree_with_pytorch(case, data):
    pytest.importorskip("torch")
    _differential(case, data, "torch")


@pytest.mark.parametrize("case", JAX_CASES, ids=[c.name for c in JAX_CASES])
@given(data=st.data())
def test_values_and_gradients_agree_with_jax(case, data):
    pytest.importorskip("jax")
    _differential(case, data, "jax")


# Registered before this table existed; each name leaves this set when its case is written.
AWAITING_CASES: frozenset[str] = frozenset()


def test_every_registered_numpy_function_has_a_case():
    covered = {c.function for c in CASES}
    missing = {qualified_name(f) for f in NUMPY_OPS if f not in covered}
    assert missing <= AWAITING_CASES, (
        f"NumPy functions registered without a case in tests/cases_*.py: "
        f"{sorted(missing - AWAITING_CASES)}"
    )
    stale = sorted(AWAITING_CASES - missing)
    assert not stale, f"these have cases now: remove them from AWAITING_CASES: {stale}"
