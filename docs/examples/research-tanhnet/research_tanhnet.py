"""A model plugin for research: a network with one hidden tanh layer, in numpy.

research's own loop trains it (mini-batches, optimizer and schedule plugins, checkpoints);
the model only computes losses and gradients."""

from typing import Annotated

import numpy as np

from research import hookimpl
from research.options import Option


class TanhNet:
    """``z = tanh(x W1 + b1) W2 + b2``, softmax cross-entropy on ``z``.

    x: (N, F) rows of F = prod(input_shape) values; W1: (F, width); W2: (width, classes).
    """

    def __init__(self, input_shape, n_classes, *, dtype, rng,
                 width: Annotated[int, Option("Hidden units", min=1, flag="--width")] = 64):
        features = int(np.prod(input_shape))
        self.W1 = (rng.standard_normal((features, width)) / np.sqrt(features)).astype(dtype)
        self.b1 = np.zeros(width, dtype)
        self.W2 = (rng.standard_normal((width, n_classes)) / np.sqrt(width)).astype(dtype)
        self.b2 = np.zeros(n_classes, dtype)
        self.params = [self.W1, self.b1, self.W2, self.b2]  # the optimizer updates these in place

    def check_data(self, x, y):
        return np.ascontiguousarray(x, dtype=self.W1.dtype), np.ascontiguousarray(y, dtype=np.int64)

    def _forward(self, x):
        """Hidden activations h (N, width) and class probabilities p (N, classes)."""
        h = np.tanh(x @ self.W1 + self.b1)
        z = h @ self.W2 + self.b2
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return h, p / p.sum(axis=1, keepdims=True)

    def _loss(self, p, y):
        rows = np.arange(len(y))
        return float(-np.log(p[rows, y] + 1e-12).mean()), float((p.argmax(axis=1) == y).mean())

    def loss_and_grads(self, x, y, *, checked=False):
        if not checked:
            x, y = self.check_data(x, y)
        h, p = self._forward(x)
        loss, acc = self._loss(p, y)
        dz = p
        dz[np.arange(len(y)), y] -= 1  # d loss / dz = (p - onehot(y)) / N
        dz /= len(y)
        dh = (dz @ self.W2.T) * (1 - h * h)  # tanh' = 1 - tanh^2
        return loss, acc, [x.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]

    def evaluate(self, x, y):
        x, y = self.check_data(x, y)
        return self._loss(self._forward(x)[1], y)

    def logits(self, x):
        """Class scores z (N, classes): what an exported model's predict() ranks."""
        x = np.ascontiguousarray(x, dtype=self.W1.dtype)
        return np.tanh(x @ self.W1 + self.b1) @ self.W2 + self.b2

    def state(self):
        return {"W1": self.W1.copy(), "b1": self.b1.copy(), "W2": self.W2.copy(), "b2": self.b2.copy()}

    def load_state(self, state):
        for name, param in zip(("W1", "b1", "W2", "b2"), self.params):
            np.copyto(param, state[name])


@hookimpl
def register_models(register):
    register("tanhnet", TanhNet)
