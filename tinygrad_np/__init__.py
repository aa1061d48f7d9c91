"""tinygrad_np: reverse-mode autodiff over NumPy.

Write a model as a plain forward function; ``tg.grad`` / ``tg.value_and_grad``
give its gradient, recorded on a tape and swept backwards. NumPy functions called on
Tensors (``np.exp``, ``np.dot``, ``np.sum``, ...) run as these ops, so a forward pass
written with NumPy differentiates unchanged (see ``tinygrad_np.numpy_dispatch``).

The layout: the engine (``tensor``, ``transforms``, ``contract``, ``tree``, ``debug``,
``numpy_dispatch``), the op families (``elementwise``, ``reductions``, ``shape``,
``linalg``, ``nn``, ``conv``; ``nograd`` for functions whose results have no gradient),
written with the public ``extend`` API, and the batteries (``optim``, ``checkpoint``,
``datasets``, ``random``, ``testing``).
"""

from tinygrad_np import (
    checkpoint,
    elementwise,
    extend,
    linalg,
    nn,
    nograd,
    optim,
    random,
    reductions,
    shape,
    testing,
)
from tinygrad_np import numpy_dispatch as numpy_dispatch  # installs NumPy's protocols on Tensor
from tinygrad_np.debug import debug_checks
from tinygrad_np.elementwise import *  # noqa: F403
from tinygrad_np.extend import custom_vjp
from tinygrad_np.jacobians import hessian, jacfwd, jacobian, jacrev
from tinygrad_np.linalg import *  # noqa: F403
from tinygrad_np.nograd import *  # noqa: F403
from tinygrad_np.reductions import *  # noqa: F403
from tinygrad_np.shape import *  # noqa: F403
from tinygrad_np.tensor import Tape, Tensor, stop_gradient
from tinygrad_np.transforms import grad, hvp, jvp, linearize, trace, value_and_grad, vjp
from tinygrad_np.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

__version__ = "0.1.0"

__all__ = [
    "Tape",
    "Tensor",
    "checkpoint",
    "custom_vjp",
    "debug_checks",
    "extend",
    "grad",
    "hessian",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linearize",
    "nn",
    "optim",
    "random",
    "stop_gradient",
    "testing",
    "trace",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
]
# Each op family lists its ops once, where they are declared.
__all__ += elementwise.__all__
__all__ += reductions.__all__
__all__ += shape.__all__
__all__ += linalg.__all__
__all__ += nograd.__all__
