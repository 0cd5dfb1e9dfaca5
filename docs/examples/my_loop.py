"""My own training loop for research: softmax regression on the digits, plain numpy,
mini-batch SGD with momentum. research drives it one epoch at a time."""

import json

import numpy as np

from research.data import load_digits


class Trainer:
    """Built from the trial's whole configuration; one more epoch per train_epoch()."""

    metrics = ("val_acc", "val_loss", "train_loss", "worst_class_acc")  # what train_epoch reports

    def __init__(self, config):
        data = load_digits()  # the same split for every trial: only the model's seed varies
        self.x, self.y = data.x_train, data.y_train
        self.x_val, self.y_val = data.x_val, data.y_val
        self.lr = float(config.get("lr", 0.1))  # values from --opt arrive as strings
        self.momentum = float(config.get("momentum", 0.9))
        self.batch_size = int(config.get("batch_size", 64))
        self.rng = np.random.default_rng(int(config.get("seed", 0)))
        self.w = self.rng.normal(0.0, 0.01, (data.n_features, data.n_classes))
        self.b = np.zeros(data.n_classes)
        self.vw, self.vb = np.zeros_like(self.w), np.zeros_like(self.b)

    def _loss(self, x, y):
        """Mean cross-entropy, accuracy and the softmax probabilities of a batch."""
        z = x @ self.w + self.b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        return -np.log(p[rows, y] + 1e-12).mean(), (p.argmax(axis=1) == y).mean(), p

    def train_epoch(self):
        order = self.rng.permutation(len(self.y))
        total = 0.0
        with np.errstate(all="ignore"):  # a learning rate too large gives NaN: research marks it diverged
            for start in range(0, len(order), self.batch_size):
                i = order[start:start + self.batch_size]
                loss, _, p = self._loss(self.x[i], self.y[i])
                total += loss * len(i)
                p[np.arange(len(i)), self.y[i]] -= 1  # dL/dz, summed over the batch
                self.vw = self.momentum * self.vw - self.lr * self.x[i].T @ p / len(i)
                self.vb = self.momentum * self.vb - self.lr * p.mean(axis=0)
                self.w += self.vw
                self.b += self.vb
            val_loss, val_acc, p = self._loss(self.x_val, self.y_val)
        hits = p.argmax(axis=1) == self.y_val
        worst = min(hits[self.y_val == k].mean() for k in range(self.w.shape[1]))  # a metric of my own
        return {"train_loss": total / len(order), "val_loss": float(val_loss), "val_acc": float(val_acc),
                "worst_class_acc": float(worst)}

    def state(self):
        """Everything the next epoch depends on, as arrays: an exact resume and rollback."""
        return {"w": self.w.copy(), "b": self.b.copy(), "vw": self.vw.copy(), "vb": self.vb.copy(),
                "lr": np.array(self.lr), "momentum": np.array(self.momentum),
                "rng": np.array(json.dumps(self.rng.bit_generator.state))}

    def load_state(self, state):
        self.w, self.b = state["w"].copy(), state["b"].copy()
        self.vw, self.vb = state["vw"].copy(), state["vb"].copy()
        self.lr, self.momentum = float(state["lr"]), float(state["momentum"])
        self.rng.bit_generator.state = json.loads(str(state["rng"]))

    def tunable(self):
        """What babysit may change between epochs, with the current values."""
        return {"lr": self.lr, "momentum": self.momentum}

    def set_hyper(self, name, value):
        if name not in self.tunable():
            raise ValueError(f"cannot change {name}; changeable: lr, momentum")
        value = float(value)  # research set sends the value as text
        if not (value > 0 if name == "lr" else 0 <= value < 1):
            raise ValueError(f"{name} must be {'> 0' if name == 'lr' else 'in [0, 1)'}, got {value}")
        setattr(self, name, value)
