"""The models the experiments can train and load, by name.

``train.py --model NAME`` trains one, and the name goes into the checkpoint's config, so
``predict.py`` rebuilds whichever model a checkpoint holds. A model is a module with:

* ``DESCRIPTION``: a few words for messages, e.g. ``"784-128-10 MLP"``;
* ``init_params(rng, dtype)`` and ``zeros_params(dtype)`` (the template that
  ``checkpoint.load`` checks a file against);
* ``inputs(images)``: float images (N, 28, 28) in [0, 1] -> the model's input;
* ``forward(params, x)``: logits (N, 10); ``probabilities(params, x)``: softmax of them;
* optionally ``RECIPE``, a dict overriding ``train.py``'s defaults (``epochs``, ``lr``,
  ``batch_size``, ``lr_decay``, ``max_shift``) for this model, and ``plots(params, out)``,
  which saves model-specific figures into the run directory and returns their file names;
* optionally ``TRAINING_KEYS = True``: then ``forward(params, x, key)`` is the training-time
  network (dropout) and ``train.py`` passes it a random key per batch, drawn from the run's
  generator (so that runs stay reproducible and resumable);
* optionally ``JIT = True``: ``train.py`` then traces its training step with ``tg.jit``
  (results bitwise those of the eager step), for a model whose code the tracer can record.

Register a new model by adding its module here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODELS = {"mlp": "experiments.model", "cnn": "experiments.cnn"}
DEFAULT_MODEL = "mlp"
# predict.py's default: the latest full run of the first of these that has one (the most
# accurate model first), else the latest full run of any model.
PREDICTION_PREFERENCE = ("cnn", "mlp")


class UnknownModelError(ValueError):
    """A model name that is not registered."""


def get(name: str) -> ModuleType:
    """The module of model ``name``."""
    if name not in MODELS:
        raise UnknownModelError(
            f"unknown model {name!r}: the registered models are {', '.join(sorted(MODELS))}"
        )
    return importlib.import_module(MODELS[name])
