"""The built-in optimizers: sgd, momentum, rmsprop, adam and adamw, on the C kernels.

Each is a ``research.nn.optimizer.Optimizer`` (construction, ``set``, ``state`` and plans are
described there) whose step is one call of a kernel plan. Hyperparameters are declared in
each ``__init__`` with their ranges; ``search_space`` gives their default search space on
the right scale (learning rate log, betas log(1 - beta)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from research import hookimpl, kernels
from research.nn.optimizer import Beta, Epsilon, LearningRate, Optimizer, WeightDecay
from research.space import Float

_LR = Float(1e-4, 1.0, "log", name="lr")
_EPS = Float(1e-10, 1e-6, "log", name="eps")


class _KernelOptimizer(Optimizer):
    """An optimizer whose step is one ``plan_type`` plan call with ``plan_arguments``."""

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter array from ``grads`` (same shapes and dtypes)."""
        plan = self._plan(grads)
        plan.step(*self.plan_arguments(self.t + 1))
        self.t += 1

    def plan_arguments(self, t: int) -> tuple[float, ...]:
        """The arguments of the plan's ``step`` for step ``t`` (counting from 1)."""
        raise NotImplementedError


class SGD(_KernelOptimizer):
    """Stochastic gradient descent with optional (coupled, L2) weight decay::

        p -= lr * (g + weight_decay * p)

    :param params: the arrays to update in place (float32/float64, C-contiguous).
    :param lr: learning rate, > 0.
    :param weight_decay: L2 penalty coefficient, >= 0.
    """

    name = "sgd"
    search_space = {"lr": _LR}
    plan_type = kernels.SGDPlan

    def __init__(self, params: Sequence[np.ndarray], *, lr: LearningRate = 0.01,
                 weight_decay: WeightDecay = 0.0) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay)

    def plan_arguments(self, t: int) -> tuple[float, ...]:
        return self.hyper["lr"], self.hyper["weight_decay"]


class Momentum(_KernelOptimizer):
    """SGD with momentum as an exponentially weighted average of the gradients::

        velocity = beta * velocity + (1 - beta) * g
        p -= lr * velocity

    (The average form: the step size does not grow by 1 / (1 - beta) as in the
    ``v = beta * v + g`` form.)

    :param lr: learning rate, > 0.
    :param beta: averaging coefficient, in [0, 1); 0 is plain SGD.
    """

    name = "momentum"
    buffer_names = ("velocity",)
    search_space = {"lr": _LR, "beta": Float(0.9, 0.999, "log1m", name="beta")}
    plan_type = kernels.MomentumPlan

    def __init__(self, params: Sequence[np.ndarray], *, lr: LearningRate = 0.01, beta: Beta = 0.9) -> None:
        super().__init__(params, lr=lr, beta=beta)

    def plan_arguments(self, t: int) -> tuple[float, ...]:
        return self.hyper["lr"], self.hyper["beta"]


class RMSprop(_KernelOptimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients::

        sq = beta * sq + (1 - beta) * g * g
        p -= lr * g / (sqrt(sq) + eps)

    :param lr: learning rate, > 0.
    :param beta: decay of the squared-gradient average, in [0, 1). The default 0.9 is the
        usual RMSprop decay (Hinton's lecture 6e, Keras' ``rho``); the kernel's own default,
        0.999, is Adam's beta2.
    :param eps: added to the root mean square, > 0.
    """

    name = "rmsprop"
    buffer_names = ("sq",)
    search_space = {"lr": _LR, "beta": Float(0.9, 0.999, "log1m", name="beta"), "eps": _EPS}
    plan_type = kernels.RMSpropPlan

    def __init__(self, params: Sequence[np.ndarray], *, lr: LearningRate = 1e-3, beta: Beta = 0.9,
                 eps: Epsilon = 1e-8) -> None:
        super().__init__(params, lr=lr, beta=beta, eps=eps)

    def plan_arguments(self, t: int) -> tuple[float, ...]:
        h = self.hyper
        return h["lr"], h["beta"], h["eps"]


class Adam(_KernelOptimizer):
    """Adam (Kingma & Ba), bias-corrected; at step t = 1, 2, ...::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

    No weight decay: for decoupled weight decay use ``adamw``.

    :param lr: learning rate, > 0.
    :param beta1: decay of the gradient average, in [0, 1).
    :param beta2: decay of the squared-gradient average, in [0, 1).
    :param eps: added to the root mean square, > 0.
    """

    name = "adam"
    buffer_names = ("m", "v")
    search_space = {
        "lr": _LR,
        "beta1": Float(0.9, 0.999, "log1m", name="beta1"),
        "beta2": Float(0.99, 0.9999, "log1m", name="beta2"),
        "eps": _EPS,
    }
    plan_type = kernels.AdamPlan

    def __init__(self, params: Sequence[np.ndarray], *, lr: LearningRate = 1e-3, beta1: Beta = 0.9,
                 beta2: Beta = 0.999, eps: Epsilon = 1e-8) -> None:
        super().__init__(params, lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    def plan_arguments(self, t: int) -> tuple[float, ...]:
        h = self.hyper
        return t, h["lr"], h["beta1"], h["beta2"], h["eps"], h.get("weight_decay", 0.0)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, applied first::

        p -= lr * weight_decay * p
        then the Adam step (see ``Adam``).

    :param weight_decay: decay coefficient, >= 0 (scaled by lr, not by the gradient statistics).
    """

    name = "adamw"
    search_space = {**Adam.search_space, "weight_decay": Float(1e-6, 1e-1, "log", name="weight_decay")}

    def __init__(self, params: Sequence[np.ndarray], *, lr: LearningRate = 1e-3, beta1: Beta = 0.9,
                 beta2: Beta = 0.999, eps: Epsilon = 1e-8, weight_decay: WeightDecay = 0.01) -> None:
        Optimizer.__init__(self, params, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)


@hookimpl
def register_optimizers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register sgd, momentum, rmsprop, adam and adamw."""
    register("sgd", SGD)
    register("momentum", Momentum)
    register("rmsprop", RMSprop)
    register("adam", Adam)
    register("adamw", AdamW)
