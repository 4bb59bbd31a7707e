"""A training process killed with SIGKILL, again and again, resumes to the uninterrupted result.

The child (tests/checkpoint_child.py) trains 3,000 updates with checkpoints and is killed:

* at random moments, in rounds that checkpoint after every update (most kills then land inside a
  checkpoint write) or once per epoch (more kills land in the updates);
* inside a checkpoint write for certain: the child stops in the fsync of its third write (the
  temporary file complete, not yet renamed);
* inside an optimizer step for certain: the child stops between two parameters of an update.

After each kill, the checkpoint present must load (as a checkpoint and as a model) and never go
back; at the end, the resumed run's weights and history equal an uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import descend as ds

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import checkpoint_child  # noqa: E402

# (how the kill point is chosen, checkpoint every ... updates)
PLAN = [
    ("random", 1), ("random", 50), ("write", 1), ("random", 1), ("step", 50),
    ("random", 50), ("random", 1), ("write", 1), ("step", 1), ("random", 50),
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="needs POSIX signals (SIGKILL)"
)


def _start(checkpoint: Path, out: Path, every: int, pause: str = "") -> subprocess.Popen:
    cmd = [sys.executable, str(HERE / "checkpoint_child.py"), "train", str(out), str(checkpoint),
           str(every)] + ([pause] if pause else [])  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_round(checkpoint: Path, out: Path, how: str, every: int, rng: random.Random) -> bool:
    """Run the child and SIGKILL it; True if it was killed (not finished)."""
    proc = _start(checkpoint, out, every, "" if how == "random" else how)
    try:
        assert proc.stdout.readline().strip() == "begin", proc.stderr.read()
        if how == "random":
            time.sleep(rng.uniform(0.01, 0.3 if every == 1 else 0.1))
        else:
            assert proc.stdout.readline().strip() == "paused", proc.stderr.read()
        alive = proc.poll() is None
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return alive
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_sigkill_at_many_points_then_resume_gives_the_uninterrupted_result(tmp_path):
    rng = random.Random(6)
    checkpoint, out = tmp_path / "run.ckpt", tmp_path / "out.npz"
    kills = kills_mid_write = 0
    steps = []
    started = time.perf_counter()
    for how, every in PLAN:
        kills += _kill_round(checkpoint, out, how, every, rng)
        mid_write = bool(list(tmp_path.glob(".run.ckpt.*.tmp")))
        kills_mid_write += mid_write
        if how == "write":
            assert mid_write
        # Whatever the moment of the kill, the checkpoint present is complete and consistent.
        if checkpoint.exists():
            state = ds.load_checkpoint(checkpoint)
            assert state.history.n_updates == state.step == len(state.history.step["loss"])
            assert not steps or state.step >= steps[-1]  # never goes back
            steps.append(state.step)
            ds.load(checkpoint)  # the model part is a valid model file too
        assert not out.exists()  # no round ran to the end
    assert kills == len(PLAN)
    assert steps and steps[-1] > 0

    # The last run goes to the end; it removes the temporary files that killed writes left.
    proc = _start(checkpoint, out, 500)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert not list(tmp_path.glob(".*.tmp"))

    model, history = checkpoint_child.train()
    with np.load(out) as result:
        for name, value in model.state_dict().items():
            assert np.array_equal(result[f"param.{name}"], value), name
        assert result["step_loss"].tolist() == history.step["loss"]
        assert result["epoch_loss"].tolist() == history.epoch["loss"]
    assert len(history.step["loss"]) == checkpoint_child.EPOCHS * 50
    print(
        f"\n{kills} SIGKILLs ({kills_mid_write} inside a checkpoint write, 2 inside an optimizer "
        f"step), checkpoints found at updates {steps}; {time.perf_counter() - started:.1f} s"
    )
