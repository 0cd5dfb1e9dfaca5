"""A PyTorch training loop for research: a small CNN on research's built-in digits.

research builds one Trainer per trial from the trial's configuration and calls train_epoch()
once per epoch; state() and load_state() move the whole run in and out of numpy arrays, so a
study resumes after a kill, and babysit rolls back, to the exact same curve.

    research train --trainer torch_digits:Trainer --epochs 10 --lr 0.003
    research train --strategy caviar --trainer torch_digits:Trainer --space lr=log:1e-4..1e-1 --prune asha

This file must be importable by name where training happens: put its folder on PYTHONPATH, or
install it (caviar's worker processes import it again).
"""

import json

import numpy as np
import torch
from torch import nn

from research.data import load_digits


def make_model(channels: int) -> nn.Module:
    """Two blocks conv 3x3 -> batchnorm -> ReLU -> 2x2 max pooling (8x8 -> 4x4 -> 2x2), then a
    linear layer to the 10 classes."""
    wide = 2 * channels
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, wide, 3, padding=1, bias=False), nn.BatchNorm2d(wide), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(wide * 2 * 2, 10),
    )


class Trainer:
    """One trial: ``config`` is its whole flat configuration (fixed values, sampled values,
    ``seed``, ``epochs``...). Reads ``lr``, ``weight_decay``, ``channels``, ``batch_size``
    and ``seed``; ignores the rest."""

    metrics = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")  # what train_epoch returns

    def __init__(self, config):
        torch.set_num_threads(1)  # tiny tensors; and one thread always sums in the same order
        data = load_digits()  # standardized; the same split for every trial
        shape = (-1, *data.input_shape)  # rows of 64 values -> images of 1 x 8 x 8
        self.x = torch.tensor(data.x_train, dtype=torch.float32).reshape(shape)
        self.y = torch.tensor(data.y_train)
        self.x_val = torch.tensor(data.x_val, dtype=torch.float32).reshape(shape)
        self.y_val = torch.tensor(data.y_val)
        seed = int(config.get("seed", 0))
        self.batch_size = int(config.get("batch_size", 64))
        torch.manual_seed(seed)  # the initial weights depend on the trial's seed only
        self.model = make_model(int(config.get("channels", 16)))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(config.get("lr", 1e-3)),
                                          weight_decay=float(config.get("weight_decay", 0.0)))
        # Shuffling draws from the trainer's own generator, not torch's global one: a worker
        # process advances several trials in turn, and their batches must not depend on that.
        self.generator = torch.Generator().manual_seed(seed)
        self.loss = nn.CrossEntropyLoss()

    def train_epoch(self):
        self.model.train()
        order = torch.randperm(len(self.y), generator=self.generator)
        loss_sum = correct = 0.0
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            logits = self.model(self.x[batch])
            loss = self.loss(logits, self.y[batch])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.item() * len(batch)
            correct += (logits.argmax(dim=1) == self.y[batch]).sum().item()
        self.model.eval()
        with torch.no_grad():
            logits = self.model(self.x_val)
            val_loss = self.loss(logits, self.y_val).item()
            val_acc = (logits.argmax(dim=1) == self.y_val).float().mean().item()
        # A loss that is NaN or infinite marks the run diverged; research stops it.
        return {"train_loss": loss_sum / len(order), "train_acc": correct / len(order),
                "val_loss": val_loss, "val_acc": val_acc, "lr": self.tunable()["lr"]}

    def state(self):
        """Everything the next epoch depends on, as numpy arrays (copies):
        ``model.NAME`` for each tensor of the model's state_dict (weights and batchnorm's
        running statistics), ``optimizer.INDEX.SLOT`` for Adam's step and moments of each
        parameter, ``optimizer.groups`` for its hyperparameters (JSON), ``generator`` for the
        shuffling RNG."""
        arrays = {f"model.{name}": tensor.detach().numpy().copy()
                  for name, tensor in self.model.state_dict().items()}
        saved = self.optimizer.state_dict()
        for index, slots in saved["state"].items():
            for slot, tensor in slots.items():
                arrays[f"optimizer.{index}.{slot}"] = tensor.numpy().copy()
        arrays["optimizer.groups"] = np.array(json.dumps(saved["param_groups"]))
        arrays["generator"] = self.generator.get_state().numpy().copy()
        return arrays

    def load_state(self, state):
        self.model.load_state_dict({key[len("model."):]: torch.tensor(value)
                                    for key, value in state.items() if key.startswith("model.")})
        slots = {}
        for key, value in state.items():
            kind, _, rest = key.partition(".")
            if kind == "optimizer" and rest != "groups":
                index, slot = rest.split(".")
                slots.setdefault(int(index), {})[slot] = torch.tensor(value)
        groups = json.loads(str(state["optimizer.groups"]))
        for group in groups:
            group["betas"] = tuple(group["betas"])  # JSON made the tuple a list
        self.optimizer.load_state_dict({"state": slots, "param_groups": groups})
        self.generator.set_state(torch.tensor(state["generator"]))

    def tunable(self):
        """What babysit may change between epochs."""
        return {"lr": self.optimizer.param_groups[0]["lr"]}

    def set_hyper(self, name, value):
        value = float(value)  # research set sends text
        if name != "lr" or not value > 0:
            raise ValueError(f"can change only lr, to a number > 0; got {name}={value}")
        for group in self.optimizer.param_groups:
            group["lr"] = value
