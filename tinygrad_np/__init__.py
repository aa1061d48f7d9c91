"""tinygrad_np: reverse-mode autodiff over NumPy.

Write a model as a plain forward function; ``tg.grad`` / ``tg.value_and_grad``
give its gradient, recorded on a tape and swept backwards. NumPy functions called on
Tensors (``np.exp``, ``np.dot``, ``np.sum``, ...) run as these ops, so a forward pass
written with NumPy differentiates unchanged (see ``tinygrad_np.numpy_dispatch``).

At the top level (``import tinygrad_np as tg``):

* transforms: ``grad``, ``value_and_grad``, ``vjp``, ``hvp``, ``jvp``, ``linearize``,
  ``jacfwd``, ``jacrev`` (``jacobian``), ``hessian``, ``jit`` (trace once, replay; with
  ``pure_callback``), ``trace`` (the tape, printable and drawable with ``.to_dot()``),
  ``custom_vjp``, ``stop_gradient``, ``debug_checks``;
* the ops, as functions (``tg.exp``, ``tg.sum(x, axis=1)``, ``tg.matmul``, ...), NumPy
  functions on Tensors and Tensor operators and methods;
* ``Tensor``, ``Tape`` and the pytree functions ``tree_map``, ``tree_flatten``, ...

The modules, each with its own ``help()``:

* ``tg.nn``: a dense layer, cross-entropy, dropout, convolution and pooling layers;
* ``tg.optim``: optimizers with optax's conventions (``sgd``, ``adam``, ``adamw``,
  ``apply_updates``) and learning-rate schedules under optax's names;
* ``tg.checkpoint``: ``save`` and ``load`` parameters, optimizer state and metadata in one
  atomic, pickle-free ``.npz`` file;
* ``tinygrad_np.datasets``: MNIST and Fashion-MNIST (``mnist()``), read and checked;
* ``tg.random``: explicit random keys, as JAX passes them;
* ``tg.testing``: ``check_grads`` (the engine's derivatives against finite differences),
  ``numerical_grad`` and hypothesis strategies (``tinygrad_np.testing.strategies``);
* ``tg.extend``: ``Primitive``, ``implements`` and the rules for writing your own ops.
* ``tinygrad_np.numpy``: NumPy's namespace, in which NumPy code that builds arrays from
  lists of traced values (``np.array([t1, t2])``, ``np.mean([t1, t2])``) differentiates
  unchanged: ``import tinygrad_np.numpy as np`` (not imported by ``import tinygrad_np``).

The layout: the engine (``tensor``, ``transforms``, ``contract``, ``tree``, ``debug``,
``numpy_dispatch``), the op families (``elementwise``, ``reductions``, ``shape``,
``construction``, ``rearranging``, ``differences``, ``linalg``, ``nn``, ``conv``; ``nograd``
for functions whose results have no gradient), written with the public ``extend`` API, and
the batteries (``optim``, ``checkpoint``, ``datasets``, ``random``, ``testing``).
"""

from tinygrad_np import (
    checkpoint,
    construction,
    differences,
    elementwise,
    extend,
    linalg,
    nn,
    nograd,
    optim,
    random,
    rearranging,
    reductions,
    shape,
    testing,
)
from tinygrad_np import numpy_dispatch as numpy_dispatch  # installs NumPy's protocols on Tensor
from tinygrad_np.construction import *  # noqa: F403
from tinygrad_np.debug import debug_checks
from tinygrad_np.differences import *  # noqa: F403
from tinygrad_np.elementwise import *  # noqa: F403
from tinygrad_np.extend import custom_vjp
from tinygrad_np.jacobians import hessian, jacfwd, jacobian, jacrev
from tinygrad_np.jit import jit, pure_callback
from tinygrad_np.linalg import *  # noqa: F403
from tinygrad_np.nograd import *  # noqa: F403
from tinygrad_np.rearranging import *  # noqa: F403
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
    "jit",
    "jvp",
    "linearize",
    "nn",
    "optim",
    "pure_callback",
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
__all__ += construction.__all__
__all__ += rearranging.__all__
__all__ += differences.__all__
__all__ += linalg.__all__
__all__ += nograd.__all__
