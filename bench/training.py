"""The trainer benchmark: `zoo.train.train`'s epoch time against a bare `model.fit`.

    python -m bench training            # dnn-regressor on red-wine, 30 epochs each way
    python -m bench training --smoke    # 2 epochs: checks the harness

Both sides build the same registered model on the same split and compile it the same way;
the bare side calls `model.fit` with no callbacks. The trainer adds early stopping (with a
patience that never triggers here), BackupAndRestore's per-epoch checkpoint and the CSV
history. Epoch time is the median over epochs, so start-up and tracing do not count; the
ratio trainer / bare is what is reported (target: at most 1.05).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def run(*, smoke: bool = False, model: str = "dnn-regressor", out_dir: str = "docs") -> dict:
    import keras

    from zoo.config import TrainConfig
    from zoo.datasets import load_dataset
    from zoo.registry import create_model, model_info
    from zoo.train import compile_model, input_names, seed_everything, train

    epochs = 2 if smoke else 30
    info = model_info(model)
    config = TrainConfig(model=model, epochs=epochs, patience=epochs, export=False).resolved()

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    seed_everything(config.seed)
    data = load_dataset(config.dataset, seed=config.seed, task=info.task)
    bare = create_model(model, data)
    compile_model(bare, config, info)
    names = input_names(bare)
    bare_times = EpochTimes()
    bare.fit(data.train.select(names), data.train.target,
             validation_data=(data.validation.select(names), data.validation.target),
             epochs=epochs, batch_size=config.batch_size, verbose=0, callbacks=[bare_times])

    trainer_times = EpochTimes()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-train-") as scratch:
        train(dataclasses.replace(config, output_dir=str(Path(scratch) / "run")), verbose=0,
              callbacks=[trainer_times])
    # The epoch timer runs last of the trainer's callbacks, so the ratio includes the
    # backup and history work done in the epoch's end.
    report = {
        "model": model, "epochs": epochs,
        "bare_epoch_ms": 1e3 * float(np.median(bare_times.times[1:] or bare_times.times)),
        "trainer_epoch_ms": 1e3 * float(np.median(trainer_times.times[1:] or trainer_times.times)),
    }
    report["ratio"] = report["trainer_epoch_ms"] / report["bare_epoch_ms"]
    print(json.dumps(report, indent=2))
    if not smoke:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
