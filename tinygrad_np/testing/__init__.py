"""Testing tools: check the engine's gradients of your own functions.

``check_grads(f, args)`` compares the engine's derivatives of ``f`` with central
finite differences in float64 and raises AssertionError, naming the argument
and element, when they disagree; ``numerical_grad`` is the finite-difference
side on its own. Hypothesis strategies for generating well-conditioned inputs
live in :mod:`tinygrad_np.testing.strategies`, which is the only part of this
package that imports hypothesis.
"""

from tinygrad_np.testing._check import SUPPORTED_MODES, check_grads, default_tolerance
from tinygrad_np.testing._numerical import DEFAULT_EPS, numerical_grad

__all__ = ["DEFAULT_EPS", "SUPPORTED_MODES", "check_grads", "default_tolerance", "numerical_grad"]
