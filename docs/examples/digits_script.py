"""Softmax regression on the built-in digits, as a script research runs once per trial:

    research train --strategy caviar --command "python digits_script.py" --space lr=log:1e-3..1

Run by hand (`python digits_script.py`) it trains with the defaults below and prints the same
lines. Any program that follows the protocol works; this one uses research.script for it.
"""

import json
import os

import numpy as np

from research import script
from research.data import load_digits

trial = script.trial(defaults={"lr": 0.1, "momentum": 0.9, "batch_size": 64, "epochs": 10, "seed": 0})
lr, momentum = float(trial.config["lr"]), float(trial.config["momentum"])
batch_size, seed = int(trial.config["batch_size"]), int(trial.config["seed"])

data = load_digits()  # the same split for every trial: only the model's seed varies
x, y, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
rng = np.random.default_rng(seed)
w = rng.normal(0.0, 0.01, (data.n_features, data.n_classes))
b = np.zeros(data.n_classes)
vw, vb = np.zeros_like(w), np.zeros_like(b)

saved = trial.checkpoint_dir / "state.npz"
if trial.start_epoch:  # resumed: weights, velocities and the RNG, so the curve goes on exactly
    with np.load(saved) as state:
        w, b, vw, vb = state["w"], state["b"], state["vw"], state["vb"]
        rng.bit_generator.state = json.loads(str(state["rng"]))


def loss_and_probabilities(x, y):
    z = x @ w + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y] + 1e-12).mean(), p


for epoch in trial.remaining:
    order = rng.permutation(len(x))
    losses = []
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        loss, p = loss_and_probabilities(x[index], y[index])
        p[np.arange(len(index)), y[index]] -= 1.0
        vw = momentum * vw + x[index].T @ p / len(index)
        vb = momentum * vb + p.mean(axis=0)
        w, b = w - lr * vw, b - lr * vb
        losses.append(loss)
    val_loss, p = loss_and_probabilities(x_val, y_val)
    val_acc = float((p.argmax(axis=1) == y_val).mean())

    # Save first, then report: research may copy the folder as soon as it reads the line.
    with open(saved.with_suffix(".tmp"), "wb") as handle:
        np.savez(handle, w=w, b=b, vw=vw, vb=vb, rng=json.dumps(rng.bit_generator.state))
    os.replace(saved.with_suffix(".tmp"), saved)
    if not trial.report(val_acc=val_acc, val_loss=val_loss, train_loss=float(np.mean(losses))):
        break
