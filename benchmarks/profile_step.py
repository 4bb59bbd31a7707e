"""Where one training update spends its time: in BLAS, or in everything around it.

Times one epoch of the MLP 784-256-10 benchmark (ReLU, softmax + cross-entropy, plain GD,
float32) at batch sizes 1, 32 and full, on the eager path (``fit(..., compile=False)``: every
update records and walks the autodiff graph, as descend first did) and on the compiled path (the
default), and splits each update's wall time into

- **BLAS**: the matrix products (``np.dot``) and the parameter updates (``axpy``, and the folded
  step's in-place ``gemm``/``ger`` and ``axpy`` calls), timed by wrapping those functions for
  the run (the wrappers cost well under a microsecond a call);
- **the rest**: Python (the loop, the graph or the plan's replay, checks) and NumPy's
  element-wise work and allocations around the products.

Where the compiled step shares a large batch between the cores (row blocks, one worker thread a
core), the BLAS time is summed over the workers: the table then shows it as core time per
update, next to the wall time, and "the rest" is the cores' time minus it.

Run: ``python benchmarks/profile_step.py [--n 20000]``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

import descend as ds
from descend.compile import rewrites
from descend.compile.backend import blas as _blas
from descend.compile.backend import n_workers
from descend.optim import rules

_blas_seconds = [0.0]
_lock = threading.Lock()


def _timed(fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            with _lock:
                _blas_seconds[0] += elapsed

    return wrapper


def _model():
    return ds.nn.mlp([784, 256, 10], output_activation="softmax", seed=0)


def one_epoch(X, y, batch_size, compiled: bool) -> float:
    model = _model()
    start = time.perf_counter()
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.01),
           batch_size=batch_size, epochs=1, seed=0, progress=False, metrics=None,
           compile=compiled)  # fmt: skip
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="samples (batch size 1: n / 8)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.random((args.n, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.n)
    dot, axpy = np.dot, rules.axpy
    gemm_call, axpy_call = _blas.GemmUpdate.__call__, _blas.Axpy.__call__
    print("| batch size | path | wall per update | worker threads | BLAS | the rest |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for batch_size in (1, 32, "full"):
        n = args.n // 8 if batch_size == 1 else args.n
        updates = 1 if batch_size == "full" else -(-n // batch_size)
        for fused in (False, True):  # eager, then compiled
            one_epoch(X[:512], y[:512], batch_size, fused)  # warm up
            plain = min(one_epoch(X[:n], y[:n], batch_size, fused) for _ in range(2))
            np.dot, rules.axpy = _timed(dot), _timed(axpy)
            _blas.GemmUpdate.__call__, _blas.Axpy.__call__ = _timed(gemm_call), _timed(axpy_call)
            try:
                _blas_seconds[0] = 0.0
                wrapped = one_epoch(X[:n], y[:n], batch_size, fused)
            finally:
                np.dot, rules.axpy = dot, axpy
                _blas.GemmUpdate.__call__, _blas.Axpy.__call__ = gemm_call, axpy_call
            cores = 1
            if fused and batch_size == "full":
                flops_per_row = 2.0 * (784 * 256 + 256 * 10)
                cores = n_workers() if rewrites.shard_count(n, flops_per_row) else 1
            blas = _blas_seconds[0] / (wrapped * cores)
            per_update = plain / updates
            unit = (
                f"{per_update * 1e6:.0f} µs" if per_update < 1e-2 else f"{per_update * 1e3:.1f} ms"
            )
            path = "compiled" if fused else "eager"
            print(f"| {batch_size} | {path} | {unit} | {cores} | {blas:.0%} | {1 - blas:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
