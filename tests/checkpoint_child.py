"""A training run for the subprocess tests (kill-and-resume, determinism across processes).

Run as ``python tests/checkpoint_child.py MODE OUT [CHECKPOINT EVERY [PAUSE]]``:

* ``MODE=train``: train, saving a checkpoint every ``EVERY`` updates to ``CHECKPOINT`` and
  resuming from it when it exists; print ``begin`` when training starts; at the end write the
  weights and the per-update losses to ``OUT`` (an ``.npz``). With ``PAUSE=write`` the process
  prints ``paused`` and stops for a minute inside its third checkpoint write (after the data,
  before the fsync and the rename); with ``PAUSE=step``, inside the optimizer step of its 20th
  update, between two parameters (half of them updated): the test kills it there.
* ``MODE=plain``: the same training without checkpoints, in one go.

Importing this module does nothing (pytest's doctest collection imports it).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import numpy as np

import descend as ds

EPOCHS = 60
BATCH = 8
LOSS = "categorical_cross_entropy"


def data() -> tuple[np.ndarray, np.ndarray]:
    """400 samples, 20 features, 4 classes (the arg-max of the first four features)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 20)).astype(np.float32)
    return X, X[:, :4].argmax(axis=1)


def train(checkpoint: str | None = None, every: int = 1, announce: bool = False):
    """Train the run (resuming from ``checkpoint`` when the file exists); return model, history."""
    X, y = data()
    model = ds.nn.mlp([20, 64, 64, 4], output_activation="softmax", seed=0)
    callbacks = []
    resume = None
    if checkpoint is not None:
        callbacks.append(ds.Checkpoint(checkpoint, every=every, unit="steps"))
        resume = checkpoint if Path(checkpoint).exists() else None
    if announce:
        callbacks.append(ds.LambdaCallback(on_train_begin=lambda logs: print("begin", flush=True)))
    history = ds.fit(model, X, y, loss=LOSS, optimizer=ds.optim.Adam(0.005), batch_size=BATCH,
                     epochs=EPOCHS, seed=0, callbacks=callbacks, progress=False,
                     resume_from=resume)  # fmt: skip
    return model, history


def save_result(path: str, model, history) -> None:
    arrays = {f"param.{k}": v for k, v in model.state_dict().items()}
    arrays["step_loss"] = np.asarray(history.step["loss"])
    arrays["epoch_loss"] = np.asarray(history.epoch["loss"])
    np.savez(path, **arrays)


def _pause() -> None:
    print("paused", flush=True)
    time.sleep(60)


def pause_in(where: str) -> None:
    """Make this process stop (to be killed) inside a checkpoint write or an optimizer step."""
    if where == "write":
        real_fsync, files = os.fsync, [0]

        def fsync(fd):
            if stat.S_ISREG(os.fstat(fd).st_mode):
                files[0] += 1
                if files[0] == 3:
                    _pause()
            real_fsync(fd)

        os.fsync = fsync
    elif where == "step":
        real_update, calls = ds.optim.Adam._update, [0]
        n_params = 6  # three Dense layers: weight and bias each

        def update(self, *args):
            calls[0] += 1
            if calls[0] == 19 * n_params + 3:
                _pause()
            real_update(self, *args)

        ds.optim.Adam._update = update


def main(argv: list[str]) -> None:
    mode, out = argv[0], argv[1]
    if mode == "train":
        if len(argv) > 4:
            pause_in(argv[4])
        model, history = train(argv[2], int(argv[3]), announce=True)
    else:
        model, history = train()
    save_result(out, model, history)


if __name__ == "__main__":
    main(sys.argv[1:])
