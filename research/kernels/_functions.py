"""The checked functions: one call of a kernel on any arrays, every argument checked first.

Each function below is a stub with the public signature and docstring; `checked` writes its
body from the kernel's declaration in `_table.py` (see `_codegen.py`).
"""

from __future__ import annotations

from research.kernels._codegen import checked
from research.kernels._table import (
    ADAM_UPDATE,
    BATCHNORM_BACKWARD,
    BATCHNORM_FORWARD,
    BATCHNORM_INFERENCE,
    BATCHNORM_RELU_BACKWARD,
    BATCHNORM_RELU_FORWARD,
    BATCHNORM_RELU_INFERENCE,
    MOMENTUM_UPDATE,
    RMSPROP_UPDATE,
    SGD_UPDATE,
    SOFTMAX_CROSS_ENTROPY,
)


@checked(BATCHNORM_FORWARD)
def batchnorm_forward(
    x,
    gamma,
    beta,
    eps=1e-5,
    running_mean=None,
    running_var=None,
    momentum=0.1,
    *,
    out=None,
    mean_out=None,
    invstd_out=None,
):
    """Batchnorm training forward: normalize each channel with its batch statistics.

        mean[j]   = mean of x[:, j, ...]
        var[j]    = mean of (x[:, j, ...] - mean[j])**2                (biased)
        invstd[j] = 1 / sqrt(var[j] + eps)
        y         = gamma[j] * (x - mean[j]) * invstd[j] + beta[j]

    When running_mean and running_var are given (both or neither) they are updated in
    place with the unbiased batch variance (m = N * prod(spatial) values per channel):

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64, N * prod(spatial) >= 2
    - gamma, beta: (C,) scale and shift
    - eps: finite, > 0, added to the variance
    - running_mean, running_var: (C,) or None, updated in place
    - momentum: in [0, 1], the weight of the new batch statistic
    - out, mean_out, invstd_out: optional buffers for y, mean, invstd

    Returns a tuple of:
    - y: same shape as x (out when given)
    - mean, invstd: (C,), what batchnorm_backward needs
    """


@checked(BATCHNORM_INFERENCE)
def batchnorm_inference(x, gamma, beta, running_mean, running_var, eps=1e-5, *, out=None):
    """Batchnorm inference forward: normalize each channel with the running statistics.

        y = gamma[j] * (x - running_mean[j]) / sqrt(running_var[j] + eps) + beta[j]

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64
    - gamma, beta, running_mean, running_var: (C,)
    - eps: finite, > 0, added to the variance
    - out: optional buffer for y

    Returns:
    - y: same shape as x (out when given)
    """


@checked(BATCHNORM_BACKWARD)
def batchnorm_backward(dy, x, gamma, mean, invstd, *, dx_out=None, dgamma_out=None, dbeta_out=None):
    """Batchnorm backward from the mean and invstd saved by batchnorm_forward.

    With xhat = (x - mean[j]) * invstd[j] and m = N * prod(spatial) values per channel:

        dbeta[j]  = sum of dy[:, j, ...]
        dgamma[j] = sum of (dy * xhat)[:, j, ...]
        dx        = gamma[j] * invstd[j] / m * (m * dy - dbeta[j] - xhat * dgamma[j])

    Inputs:
    - dy: upstream gradient, same shape as x
    - x: (N, C) or (N, C, *spatial), float32 or float64
    - gamma, mean, invstd: (C,)
    - dx_out, dgamma_out, dbeta_out: optional buffers for the gradients

    Returns a tuple of:
    - dx: same shape as x
    - dgamma, dbeta: (C,)
    """


@checked(BATCHNORM_RELU_FORWARD)
def batchnorm_relu_forward(
    x,
    gamma,
    beta,
    eps=1e-5,
    running_mean=None,
    running_var=None,
    momentum=0.1,
    *,
    out=None,
    mean_out=None,
    invstd_out=None,
):
    """Batchnorm training forward followed by a ReLU, in one pass over the output.

        mean[j]   = mean of x[:, j, ...]
        var[j]    = mean of (x[:, j, ...] - mean[j])**2                (biased)
        invstd[j] = 1 / sqrt(var[j] + eps)
        y         = relu(gamma[j] * (x - mean[j]) * invstd[j] + beta[j]),  relu(v) = max(v, 0)

    Equal, bit for bit, to `batchnorm_forward` then `numpy.maximum(y, 0)` (NaN stays NaN):
    the same statistics, the same running-statistics update (when running_mean and
    running_var are given: both or neither, updated in place) and the same mean and invstd,
    which `batchnorm_relu_backward` needs with y.

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64, N * prod(spatial) >= 2
    - gamma, beta: (C,) scale and shift
    - eps: finite, > 0, added to the variance
    - running_mean, running_var: (C,) or None, updated in place
    - momentum: in [0, 1], the weight of the new batch statistic
    - out, mean_out, invstd_out: optional buffers for y, mean, invstd

    Returns a tuple of:
    - y: same shape as x (out when given), >= 0
    - mean, invstd: (C,), what batchnorm_relu_backward needs (with y)
    """


@checked(BATCHNORM_RELU_INFERENCE)
def batchnorm_relu_inference(x, gamma, beta, running_mean, running_var, eps=1e-5, *, out=None):
    """Batchnorm inference forward followed by a ReLU, in one pass.

        y = relu(gamma[j] * (x - running_mean[j]) / sqrt(running_var[j] + eps) + beta[j])

    Equal, bit for bit, to `batchnorm_inference` then `numpy.maximum(y, 0)`.

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64
    - gamma, beta, running_mean, running_var: (C,)
    - eps: finite, > 0, added to the variance
    - out: optional buffer for y

    Returns:
    - y: same shape as x (out when given), >= 0
    """


@checked(BATCHNORM_RELU_BACKWARD)
def batchnorm_relu_backward(
    dy, y, x, gamma, mean, invstd, *, dx_out=None, dgamma_out=None, dbeta_out=None
):
    """Backward of batchnorm_relu_forward, from its output y and its mean and invstd.

    The ReLU passes the gradient where y > 0: with g = where(y > 0, dy, 0),
    xhat = (x - mean[j]) * invstd[j] and m = N * prod(spatial) values per channel:

        dbeta[j]  = sum of g[:, j, ...]
        dgamma[j] = sum of (g * xhat)[:, j, ...]
        dx        = gamma[j] * invstd[j] / m * (m * g - dbeta[j] - xhat * dgamma[j])

    Equal, bit for bit, to `batchnorm_backward(numpy.where(y > 0, dy, 0), x, gamma, mean,
    invstd)`, without making g: both passes of the kernel read dy and y and mask on the fly.

    Inputs:
    - dy: gradient with respect to y, same shape as x
    - y: the output of batchnorm_relu_forward (only its sign is read), same shape as x
    - x: (N, C) or (N, C, *spatial), float32 or float64, the forward's input
    - gamma, mean, invstd: (C,), mean and invstd as batchnorm_relu_forward returned them
    - dx_out, dgamma_out, dbeta_out: optional buffers for the gradients

    Returns a tuple of:
    - dx: same shape as x
    - dgamma, dbeta: (C,)
    """


@checked(ADAM_UPDATE)
def adam_update(
    param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0
):
    """Adam (Kingma & Ba) step in place, bias-corrected; AdamW when weight_decay != 0.

        m      = beta1 * m + (1 - beta1) * grad
        v      = beta2 * v + (1 - beta2) * grad**2
        param -= lr * weight_decay * param                     (decoupled, AdamW)
        param -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps)

    Both subtractions use param from before the step, as PyTorch's AdamW does.

    Inputs:
    - param, grad, m, v: same shape, float32 or float64; param, m, v updated in place
    - step: integer >= 1, the number of this update (1 for the first)
    - lr, weight_decay: finite, >= 0; beta1, beta2: in [0, 1); eps: finite, > 0

    Returns None: the update is in place.
    """


@checked(MOMENTUM_UPDATE)
def momentum_update(param, grad, velocity, lr, beta=0.9):
    """Momentum step in place (exponentially weighted average of the gradients).

        velocity = beta * velocity + (1 - beta) * grad
        param   -= lr * velocity

    Inputs:
    - param, grad, velocity: same shape, float32 or float64; param, velocity updated in place
    - lr: finite, >= 0; beta: in [0, 1)

    Returns None: the update is in place.
    """


@checked(RMSPROP_UPDATE)
def rmsprop_update(param, grad, sq, lr, beta=0.999, eps=1e-8):
    """RMSprop step in place.

        sq     = beta * sq + (1 - beta) * grad**2
        param -= lr * grad / (sqrt(sq) + eps)

    Inputs:
    - param, grad, sq: same shape, float32 or float64; param, sq updated in place
    - lr: finite, >= 0; beta: in [0, 1); eps: finite, > 0

    Returns None: the update is in place.
    """


@checked(SGD_UPDATE)
def sgd_update(param, grad, lr, weight_decay=0.0):
    """Plain SGD step in place, with optional (coupled, L2) weight decay.

        param -= lr * (grad + weight_decay * param)

    Inputs:
    - param, grad: same shape, float32 or float64; param updated in place
    - lr, weight_decay: finite, >= 0

    Returns None: the update is in place.
    """


@checked(SOFTMAX_CROSS_ENTROPY)
def softmax_cross_entropy(logits, labels, scale=1.0, *, loss_out=None, hit_out=None, grad_out=None):
    """Softmax cross-entropy of a classifier: each sample's loss, whether it was right, and the
    gradient, in one pass (the arithmetic in double, the row maximum subtracted first).

        p        = softmax(logits[i])
        loss[i]  = log sum_k exp(logits[i, k]) - logits[i, labels[i]]
        hit[i]   = 1 when the first maximum of logits[i] is at labels[i], else 0
        grad[i]  = scale * (p - onehot(labels[i]))

    logits: (N, K) with K >= 1, float32 or float64; labels: (N,) int64 in [0, K); scale:
    finite, > 0 (1 / N makes grad the gradient of loss.mean()). Returns (loss, hit, grad):
    loss and hit (N,), grad (N, K), all of the logits' dtype; `loss_out`, `hit_out` and
    `grad_out` are buffers to fill instead.
    """
