"""Built-in models: ``mlp``, the multilayer perceptron with batchnorm (research.nn.model)."""

from typing import Any

from research import hookimpl
from research.nn.model import MLP


@hookimpl
def register_models(register: Any) -> None:
    register("mlp", MLP)
