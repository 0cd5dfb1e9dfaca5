"""Built-in models: ``mlp``, the multilayer perceptron with batchnorm (research.nn.model), and
``cnn``, the small convolutional net for image-shaped samples (research.nn.cnn)."""

from typing import Any

from research import hookimpl
from research.nn.cnn import CNN
from research.nn.model import MLP


@hookimpl
def register_models(register: Any) -> None:
    register("mlp", MLP)
    register("cnn", CNN)
