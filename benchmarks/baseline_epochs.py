"""Train epochs on request with whatever `research` this interpreter imports: the other side
of `python benchmarks/train.py --baseline PYTHON`, which runs it with another checkout's
interpreter and interleaves its epochs with its own.

Protocol, one line each way: the configuration as JSON first, then `epoch` for each epoch;
every answer is `WALL CPU VAL_ACC` (seconds of wall and CPU time measured here around
`train_epoch`, and the epoch's validation accuracy). End of input ends it.
"""

import json
import sys
import time

from threadpoolctl import threadpool_limits

try:  # the layout since the plugin-boundary change
    from research.nn.training import Trainer
except ImportError:  # older checkouts
    from research.training import Trainer
from research.plugins import load_plugins


def main() -> None:
    config = json.loads(sys.stdin.readline())
    with threadpool_limits(1):
        trainer = Trainer(config, load_plugins())
        for line in sys.stdin:
            if line.strip() != "epoch":
                break
            c0, w0 = time.process_time(), time.perf_counter()
            metrics = trainer.train_epoch()
            w1, c1 = time.perf_counter(), time.process_time()
            print(f"{w1 - w0} {c1 - c0} {metrics['val_acc']}", flush=True)


if __name__ == "__main__":
    main()
