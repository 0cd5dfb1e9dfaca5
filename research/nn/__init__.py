"""The network side: the model, its training loop, run configuration and checkpoints."""
