"""Benchmark: descend against PyTorch, JAX and scikit-learn on the workloads of issue 5.

Every workload trains (or, for prediction, evaluates) a dense network on float32 data, with
plain gradient descent (lr 0.01), and reports samples per second:

========  ===========================================================  ====================
key       workload                                                     batch sizes
========  ===========================================================  ====================
mlp       MLP 784-256-10, ReLU, softmax + cross-entropy, MNIST-shaped  1, 32, 128, full
bce       30-16-1, ReLU, sigmoid + binary cross-entropy, 455 samples   1, 32
          (the standardised breast-cancer training split)
deep      MLP 784-512-512-512-10, ReLU, softmax + cross-entropy        128
predict   forward pass only of 784-256-10 (class probabilities)        1024
ooc       100-64-10 softmax, one epoch over a memory-mapped            256
          2,000,000 x 100 float32 ``.npy`` (descend only: peak memory)
========  ===========================================================  ====================

Every (workload, library, batch size) triple is measured in a fresh subprocess (this script run
with ``--worker LIB BATCH --workload KEY``), so that one library's threads, caches and allocator
do not affect another's, and so that the peak memory of each run can be read from the kernel.

Usage::

    python benchmarks/bench_mlp.py                      # everything, under 8 minutes on 2 cores
    python benchmarks/bench_mlp.py --quick              # smoke run
    python benchmarks/bench_mlp.py --markdown benchmarks/RESULTS.md
    python benchmarks/bench_mlp.py --workloads mlp --libs descend,torch --batch-sizes 32,full
    python benchmarks/bench_mlp.py --worker descend 32 --samples 20000 --profile   # cProfile
    python benchmarks/bench_mlp.py --worker jax 128 --workload deep

See benchmarks/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SIZES = (784, 256, 10)  # the main workload's layers
LR = 0.01
LIBS = ("descend", "torch", "jax", "sklearn", "descend_eager")
LIB_NAMES = {
    "descend": "descend", "torch": "PyTorch", "jax": "JAX jit", "sklearn": "sklearn",
    "descend_eager": "descend eager",
}  # fmt: skip
MODULES = {
    "descend": "descend", "torch": "torch", "jax": "jax", "sklearn": "sklearn",
    "descend_eager": "descend",
}  # fmt: skip
DEFAULT_N = 20_000
DEFAULT_BATCH_SIZES = "1,32,128,full"
# Batch size 1 costs one Python-level update per sample in every library (and sklearn's is
# slow), so it is measured on a subset; throughput (samples/s) stays comparable.
DEFAULT_SAMPLES = {"1": 5_000}
PREDICT_CHUNK = 1024
OOC_ROWS = 2_000_000
OOC_LIMIT_MB = 300
RESULT_TAG = "RESULT "
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    sizes: tuple[int, ...]
    output: str  # "softmax" (classes, categorical cross-entropy) or "sigmoid" (binary)
    batch_sizes: tuple[str, ...]
    n: int  # samples per epoch (rows of the file for "ooc")
    quick_n: int
    subset: dict = field(default_factory=dict)  # batch size -> samples, when fewer than n
    quick_subset: dict = field(default_factory=dict)
    libs: tuple[str, ...] = LIBS
    predict: bool = False
    data: str = "mnist"  # "mnist", "breast_cancer" or "memmap"
    min_repeats: int = 1  # short runs are repeated more often (best of)

    @property
    def arch(self) -> str:
        return "-".join(map(str, self.sizes))


WORKLOADS = {
    w.key: w
    for w in (
        Workload(
            "mlp", "MLP 784-256-10", SIZES, "softmax", ("1", "32", "128", "full"),
            DEFAULT_N, 2_000, DEFAULT_SAMPLES, {"1": 200},
        ),
        Workload(
            "bce", "small net 30-16-1, BCE", (30, 16, 1), "sigmoid", ("1", "32"), 455, 455,
            data="breast_cancer", min_repeats=10,
        ),
        Workload(
            "deep", "deep MLP 784-512-512-512-10", (784, 512, 512, 512, 10), "softmax",
            ("128",), 10_000, 1_000,
        ),
        Workload(
            "predict", "prediction 784-256-10", SIZES, "softmax", (str(PREDICT_CHUNK),),
            50_000, 4_096, predict=True, min_repeats=5,
        ),
        Workload(
            "ooc", "out-of-core 100-64-10", (100, 64, 10), "softmax", ("256",), OOC_ROWS,
            200_000, libs=("descend",), data="memmap",
        ),
        Workload(
            "residual", "residual block 64-128-[128-128]+-10", (64, 128, 128, 128, 10), "softmax",
            ("32",), 20_000, 2_000, libs=("descend", "descend_eager", "torch"),
            min_repeats=6,  # its target is a ratio of two runs: each the best of more epochs
        ),
    )
}  # fmt: skip
DEFAULT_WORKLOADS = ",".join(WORKLOADS)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def make_data(n: int, seed: int, d: int = SIZES[0], k: int = SIZES[-1]):
    """MNIST-shaped synthetic data: float32 pixels in [0, 1), integer labels 0 to k-1."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d), dtype=np.float32)
    y = rng.integers(0, k, size=n)
    return X, y


def breast_cancer_train(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The breast-cancer training split: n of the 569 samples, standardised on themselves.

    Read from scikit-learn's bundled copy; without scikit-learn, synthetic data of the same shape
    (30 Gaussian features, labels from a noisy linear rule).
    """
    try:
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        source = f"breast_cancer, standardised training split of {n} of {len(X)} samples"
    except ImportError:
        rng = np.random.default_rng(seed + 1)
        X = rng.normal(size=(569, 30))
        y = (X @ rng.normal(size=30) + rng.normal(size=569) > 0).astype(np.int64)
        source = f"synthetic breast-cancer-shaped data ({n} samples; scikit-learn missing)"
    train = np.random.default_rng(seed).permutation(len(X))[:n]
    X, y = X[train], y[train]
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    return X, y.astype(np.int64), source


def workload_data(w: Workload, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    if w.data == "breast_cancer":
        return breast_cancer_train(n, seed)
    X, y = make_data(n, seed, w.sizes[0], w.sizes[-1])
    return X, y, f"synthetic: X uniform in [0, 1) of shape ({n}, {w.sizes[0]}), labels 0-9"


def gemm_flops_per_sample(sizes=SIZES, backward: bool = True) -> int:
    """Matrix-multiply FLOPs of one sample's forward (+ backward) pass (2 per multiply-add).

    Forward: a @ W for every layer. Backward: dW = a_prev^T dz for every layer and
    da_prev = dz W^T for every layer but the first (dC/dx of the input is not needed and not
    computed, by any library).
    """
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    forward = sum(2 * a * b for a, b in pairs)
    if not backward:
        return forward
    return forward + sum(2 * a * b for a, b in pairs) + sum(2 * a * b for a, b in pairs[1:])


def elementwise_flops(n: int) -> int:
    """A rough count of the element-wise work of one epoch (bias, ReLU, softmax, CE, update)."""
    d, h, k = SIZES
    n_params = d * h + h + h * k + k
    # forward: bias + ReLU on h, bias + softmax (max, sub, exp, sum, div) + CE on k;
    # backward: ReLU mask + bias-grad sum on h, p - y + bias-grad sum on k; update: p -= lr * g.
    return n * (4 * h + 9 * k) + 2 * n_params


def parse_batch(text: str) -> str:
    text = text.strip().lower()
    if text == "full":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"batch size must be a positive integer or 'full': {text}")
    return str(int(text))


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak resident memory of this process above a baseline taken at :meth:`start`.

    Linux: the high-water mark VmHWM is reset to the current RSS by writing "5" to
    /proc/self/clear_refs, so the peak is exactly that of the code that follows. Elsewhere (or if
    that write is refused) ``getrusage(RUSAGE_SELF).ru_maxrss`` minus the RSS at the start is
    used, which can only over-state the baseline's own earlier peak, never the training's.
    """

    def start(self) -> None:
        self.method = "ru_maxrss"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            if _status_kib("VmHWM") is not None:
                self.method = "VmHWM"
        except OSError:
            pass
        self.baseline_kib = _status_kib("VmRSS") or _maxrss_kib()

    def rss_mib(self) -> float:
        """Current RSS above the baseline."""
        return ((_status_kib("VmRSS") or _maxrss_kib()) - self.baseline_kib) / 1024

    def peak_mib(self) -> float:
        peak = _status_kib("VmHWM") if self.method == "VmHWM" else _maxrss_kib()
        return max(peak - self.baseline_kib, 0) / 1024


class RssSampler(threading.Thread):
    """Samples the anonymous and the file-backed part of the RSS every ``interval`` seconds.

    VmHWM gives the peak of their sum; this tells which of the two it was made of (a memory map's
    pages that the process has touched count in the file-backed part until the kernel drops them).
    """

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for key in self.peak:
                self.peak[key] = max(self.peak[key], _status_kib(key) or 0)
            self._stop_event.wait(self.interval)

    def stop(self) -> dict:
        self._stop_event.set()
        self.join()
        for key in self.peak:  # one last sample
            self.peak[key] = max(self.peak[key], _status_kib(key) or 0)
        return dict(self.peak)


def _maxrss_kib() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux


# --------------------------------------------------------------------------------------------
# Workers: each trains one epoch (or predicts) the way that library's users write it.
# setup_LIB(workload, X, y, bs) -> (run, info); run(n) uses the first n samples (the warm-up
# uses fewer) and returns (seconds, updates or chunks, last loss or None).
# --------------------------------------------------------------------------------------------


def _import_descend():
    try:
        import descend
    except ImportError:  # running from a checkout without the package installed
        sys.path.insert(0, str(HERE.parent / "src"))
        import descend
    return descend


def _descend_residual(ds, sizes):
    """x -> h = relu(x W0 + b0) -> h + (relu(h W1 + b1) W2 + b2) -> softmax(. W3 + b3)."""
    d, h, k = sizes[0], sizes[1], sizes[-1]

    class Residual(ds.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = ds.nn.Dense(d, h, activation="relu", seed=0)
            self.inner = ds.nn.Dense(h, h, activation="relu", seed=1)
            self.back = ds.nn.Dense(h, h, seed=2)
            self.head = ds.nn.Dense(h, k, activation="softmax", seed=3)

        def forward(self, x):
            a = self.inp(x)
            return self.head(self.back(self.inner(a)) + a)

    return Residual()


def _descend_model(ds, w: Workload):
    if w.key == "residual":
        return _descend_residual(ds, w.sizes)
    return ds.nn.mlp(list(w.sizes), output_activation=w.output, seed=0)


def _fit_kwargs(ds, compiled: bool) -> dict:
    # fit(compile=) since the compiled step; fit(fused=) before it (an A/B against an older
    # revision runs this script on that revision's code)
    import inspect

    params = inspect.signature(ds.fit).parameters
    return {"compile": compiled} if "compile" in params else {"fused": compiled}


def setup_descend_eager(w: Workload, X, y, bs):
    return setup_descend(w, X, y, bs, compiled=False)


def setup_descend(w: Workload, X, y, bs, compiled: bool = True):
    ds = _import_descend()
    info = {"descend": getattr(ds, "__version__", "?")}
    loss = "categorical_cross_entropy" if w.output == "softmax" else "binary_cross_entropy"

    if w.predict:
        model = ds.nn.mlp(list(w.sizes), output_activation=w.output, seed=0)
        k = int(bs)

        def predict(n):
            Xn = X if n == len(X) else X[:n]
            t0 = time.perf_counter()
            proba = ds.predict(model, Xn, batch_size=k)
            seconds = time.perf_counter() - t0
            assert proba.shape == (n, w.sizes[-1])
            return seconds, -(-n // k), None

        return predict, info

    batch_size = "full" if bs == "full" else int(bs)

    extra = _fit_kwargs(ds, compiled)

    def run(n):
        model = _descend_model(ds, w)
        t0 = time.perf_counter()
        history = ds.fit(
            model, X[:n], y[:n], loss=loss, optimizer=ds.optim.GD(LR), batch_size=batch_size,
            epochs=1, shuffle=True, seed=0, progress=False, metrics=None, **extra,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        return seconds, history.n_updates, float(history.epoch["loss"][0])

    return run, info


def _torch_mlp(sizes):
    from torch import nn

    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _torch_residual(sizes):
    from torch import nn

    d, h, k = sizes[0], sizes[1], sizes[-1]

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.inner = nn.Linear(d, h), nn.Linear(h, h)
            self.back, self.head = nn.Linear(h, h), nn.Linear(h, k)

        def forward(self, x):
            a = self.inp(x).relu()
            return self.head(self.back(self.inner(a).relu()) + a)

    return Residual()


def _torch_model(w: Workload):
    return _torch_residual(w.sizes) if w.key == "residual" else _torch_mlp(w.sizes)


def setup_torch(w: Workload, X, y, bs):
    import torch
    import torch.nn.functional as F

    info = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    Xt = torch.from_numpy(X)  # no copy
    if w.predict:
        torch.manual_seed(0)
        model = _torch_mlp(w.sizes)
        k = int(bs)

        def predict(n):
            t0 = time.perf_counter()
            with torch.inference_mode():
                proba = torch.cat(
                    [torch.softmax(model(Xt[i : i + k]), dim=1) for i in range(0, n, k)]
                )
            seconds = time.perf_counter() - t0
            assert proba.shape == (n, w.sizes[-1])
            return seconds, -(-n // k), None

        return predict, info

    if w.output == "softmax":
        yt, loss_fn = torch.from_numpy(y.astype(np.int64, copy=False)), F.cross_entropy
    else:  # one logit per sample and float targets of shape (n, 1), as BCEWithLogitsLoss wants
        yt = torch.from_numpy(y.astype(np.float32).reshape(-1, 1))
        loss_fn = F.binary_cross_entropy_with_logits

    def run(n):
        Xn, yn = Xt[:n], yt[:n]
        torch.manual_seed(0)
        model = _torch_model(w)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        k = n if bs == "full" else int(bs)
        updates = 0
        t0 = time.perf_counter()
        if k >= n:  # full batch: the data itself, as descend (nothing to shuffle)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xn), yn)
            loss.backward()
            opt.step()
            updates = 1
        else:
            perm = torch.randperm(n)
            for start in range(0, n, k):
                idx = perm[start : start + k]
                xb, yb = Xn[idx], yn[idx]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                updates += 1
        seconds = time.perf_counter() - t0
        return seconds, updates, float(loss.detach())

    return run, info


def setup_jax(w: Workload, X, y, bs):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    info = {"jax": jax.__version__, "jax_devices": str(jax.devices())}

    def init_params(seed=0):
        # As torch.nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
        rng = np.random.default_rng(seed)
        params = []
        for n_in, n_out in zip(w.sizes[:-1], w.sizes[1:], strict=True):
            bound = 1 / np.sqrt(n_in)
            W = rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)
            b = rng.uniform(-bound, bound, n_out).astype(np.float32)
            params.append((jnp.asarray(W), jnp.asarray(b)))
        return params

    def forward(params, x):
        *hidden, (W, b) = params
        for Wh, bh in hidden:
            x = jax.nn.relu(x @ Wh + bh)
        return x @ W + b  # logits

    Xj = jnp.asarray(X)  # on the device before any timing
    if w.predict:
        return _jax_predict(w, bs, Xj, init_params(), forward), info

    if w.output == "softmax":
        yj = jnp.asarray(y.astype(np.int32))

        def loss_fn(params, x, y):
            logp = jax.nn.log_softmax(forward(params, x), axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    else:
        yj = jnp.asarray(y.astype(np.float32))

        def loss_fn(params, x, y):
            z = forward(params, x)[:, 0]
            return jnp.mean(jax.nn.softplus(z) - y * z)  # BCE of sigmoid(z), from the logits

    @jax.jit
    def train_step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads), loss

    # A mini-batch is gathered inside a jitted function from the device arrays: an eager
    # Xj[idx] outside it costs about 0.4 ms per call in JAX 0.10 (more than the whole step at
    # batch size 1), which no JAX user who measures would accept.
    @jax.jit
    def train_batch(params, X, y, idx):
        return train_step(params, X[idx], y[idx])

    N = len(X)

    def run(n):
        # The warm-up (n < N) draws its batches from the same device arrays as the timed epoch
        # (a prefix of the permutation, chosen so that the last batch has the epoch's last size),
        # so that every shape the epoch needs, gathers included, is compiled before timing.
        params = init_params()
        k = n if bs == "full" else int(bs)
        rng = np.random.default_rng(0)
        updates = 0
        t0 = time.perf_counter()
        if k >= n:
            params, loss = train_step(params, Xj if n == N else Xj[:n], yj if n == N else yj[:n])
            updates = 1
        else:
            perm = rng.permutation(N)[:n]
            for start in range(0, n, k):
                idx = perm[start : start + k]
                params, loss = train_batch(params, Xj, yj, idx)
                updates += 1
        jax.block_until_ready(params)
        seconds = time.perf_counter() - t0
        return seconds, updates, float(loss)

    return run, info


def _jax_predict(w: Workload, bs, Xj, params, forward):
    import jax
    import jax.numpy as jnp

    k = int(bs)

    # The chunk is cut inside the jitted function: an eager Xj[i : i + k] outside it costs
    # about 0.5 ms per chunk in JAX 0.10, a quarter of the chunk's forward pass.
    @functools.partial(jax.jit, static_argnames="size")
    def predict_proba(params, X, start, size):
        x = jax.lax.dynamic_slice_in_dim(X, start, size)
        return jax.nn.softmax(forward(params, x), axis=1)

    def predict(n):
        t0 = time.perf_counter()
        proba = jnp.concatenate(
            [predict_proba(params, Xj, i, min(k, n - i)) for i in range(0, n, k)]
        )
        proba.block_until_ready()
        seconds = time.perf_counter() - t0
        assert proba.shape == (n, w.sizes[-1])
        return seconds, -(-n // k), None

    return predict


def _sklearn_mlp(w: Workload, batch_size: int):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=w.sizes[1:-1], activation="relu", solver="sgd", momentum=0.0,
        learning_rate="constant", learning_rate_init=LR, batch_size=batch_size, max_iter=1,
        shuffle=True, alpha=0.0, tol=0.0, n_iter_no_change=10**9, early_stopping=False,
        random_state=0,
    )  # fmt: skip


def setup_sklearn(w: Workload, X, y, bs):
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    info = {"sklearn": sklearn.__version__}

    def fit(clf, Xn, yn):
        with warnings.catch_warnings():
            # max_iter=1 always "fails to converge": that is the point.
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(Xn, yn)

    if w.predict:
        k = int(bs)
        clf = _sklearn_mlp(w, 128)
        fit(clf, X[:k], y[:k])  # fitted state to predict with (outside the timing)

        def predict(n):
            t0 = time.perf_counter()
            proba = np.concatenate([clf.predict_proba(X[i : i + k]) for i in range(0, n, k)])
            seconds = time.perf_counter() - t0
            assert proba.shape == (n, w.sizes[-1])
            return seconds, -(-n // k), None

        return predict, info

    def run(n):
        k = n if bs == "full" else int(bs)
        clf = _sklearn_mlp(w, k)
        t0 = time.perf_counter()
        fit(clf, X[:n], y[:n])
        seconds = time.perf_counter() - t0
        if clf.n_iter_ != 1 or clf.t_ != n:  # not exactly one epoch: not the same work
            raise RuntimeError(f"sklearn ran {clf.n_iter_} epochs over {clf.t_} samples")
        return seconds, -(-n // k), float(clf.loss_)

    return run, info


SETUPS = {
    "descend": setup_descend,
    "torch": setup_torch,
    "jax": setup_jax,
    "sklearn": setup_sklearn,
    "descend_eager": setup_descend_eager,
}


def warm_samples(w: Workload, lib: str, bs: str, samples: int) -> int:
    """How many samples the warm-up run uses.

    Prediction: one whole pass. Full batch: at most 2,000 samples (JAX: all, since a jitted step
    compiles for its exact shape). Mini-batches: a few updates and then a last batch of the same
    size as the epoch's last one (so that JAX compiles that shape too).
    """
    if w.predict:
        return samples
    if bs == "full":
        return samples if lib == "jax" else min(samples, 2_000)
    k = int(bs)
    warm = -(-max(4 * k, 64) // k) * k + samples % k
    return min(warm, samples)


MIN_TIMED_SECONDS = 0.5  # each worker's timed runs take at least this long (or MAX_REPEATS)
MAX_REPEATS = 500


def worker(
    wkey: str, lib: str, bs: str, samples: int, repeats: int, seed: int, profile: bool
) -> None:
    w = WORKLOADS[wkey]
    X, y, source = workload_data(w, samples, seed)
    run, info = SETUPS[lib](w, X, y, bs)
    info["data"] = source
    repeats = max(repeats, w.min_repeats)
    mem = PeakMemory()
    mem.start()
    # Warm-up: loads lazily imported code, lets the allocators and BLAS/OpenMP threads start,
    # and compiles what JAX compiles.
    run(warm_samples(w, lib, bs, samples))
    warm_peak = mem.peak_mib()
    if profile:
        _profile(run, lib, bs, samples)
        return
    # The timed runs' own peak, over the RSS after the warm-up: without one-off costs (code
    # pages, thread stacks, lazily initialised pools, compilation) of a library's first use.
    after_warmup = mem.rss_mib()
    steady = PeakMemory()
    steady.start()
    times, updates, loss = [], 0, float("nan")
    # at least `repeats` runs, and more while they add up to under MIN_TIMED_SECONDS: a run of
    # a millisecond is timed hundreds of times, so that a pause of the machine that lasts a few
    # milliseconds cannot decide its best (as timeit's autorange does)
    while len(times) < repeats or (sum(times) < MIN_TIMED_SECONDS and len(times) < MAX_REPEATS):
        seconds, updates, loss = run(samples)
        times.append(seconds)
    steady_peak = steady.peak_mib()
    result = {
        "workload": wkey, "lib": lib, "batch": bs, "samples": samples, "updates": updates,
        "times": times, "best": min(times), "median": float(np.median(times)),
        "peak_mib": max(warm_peak, after_warmup + steady_peak), "steady_peak_mib": steady_peak,
        "memory_method": mem.method, "loss": loss, "info": info,
    }  # fmt: skip
    print(RESULT_TAG + json.dumps(result), flush=True)


def worker_ooc(bs: str, rows: int, data_dir: str) -> None:
    """One epoch of descend over the memory-mapped file; peak RSS above the process's start.

    The start is this function's entry: Python and NumPy loaded, descend not yet imported, no
    data read.
    """
    start_kib = _status_kib("VmRSS") or _maxrss_kib()
    ds = _import_descend()
    w = WORKLOADS["ooc"]
    X = np.load(Path(data_dir) / "X.npy", mmap_mode="r")
    y = np.load(Path(data_dir) / "y.npy", mmap_mode="r")
    if X.shape != (rows, w.sizes[0]):
        raise RuntimeError(f"expected X of shape {(rows, w.sizes[0])}, found {X.shape}")

    def fit(Xn, yn):
        model = ds.nn.mlp(list(w.sizes), output_activation="softmax", seed=0)
        t0 = time.perf_counter()
        history = ds.fit(
            model, Xn, yn, loss="categorical_cross_entropy", optimizer=ds.optim.GD(LR),
            batch_size=int(bs), epochs=1, shuffle=True, seed=0, progress=False, metrics=None,
        )  # fmt: skip
        return time.perf_counter() - t0, history

    fit(X[:4_096], y[:4_096])  # warm-up on a slice of the map (16 updates)
    hwm_before_kib = _status_kib("VmHWM") or _maxrss_kib()
    mem = PeakMemory()
    mem.start()  # resets VmHWM: the peak of the epoch alone is then known too
    sampler = RssSampler()
    sampler.start()
    seconds, history = fit(X, y)
    parts = sampler.stop()
    hwm_kib = _status_kib("VmHWM") if mem.method == "VmHWM" else _maxrss_kib()
    result = {
        "workload": "ooc", "lib": "descend", "batch": bs, "samples": rows,
        "updates": history.n_updates, "times": [seconds], "best": seconds, "median": seconds,
        "peak_mib": (max(hwm_kib, hwm_before_kib) - start_kib) / 1024,
        "fit_peak_mib": mem.peak_mib(), "start_rss_mib": start_kib / 1024,
        "anon_peak_mib": parts["RssAnon"] / 1024, "file_peak_mib": parts["RssFile"] / 1024,
        "memory_method": mem.method, "loss": float(history.epoch["loss"][0]),
        "info": {"descend": getattr(ds, "__version__", "?")},
    }  # fmt: skip
    print(RESULT_TAG + json.dumps(result), flush=True)


def write_ooc_data(data_dir: Path, rows: int, seed: int, chunk: int = 50_000) -> None:
    """X.npy (rows x 100 float32, uniform in [0, 1)) and y.npy (labels 0-9), written in chunks.

    The header is written first, then each chunk with ``tofile``: the writing process never holds
    more than one chunk (20 MB), and no memory map is used to write (its dirty pages would count
    in this process's RSS).
    """
    d, k = WORKLOADS["ooc"].sizes[0], WORKLOADS["ooc"].sizes[-1]
    rng = np.random.default_rng(seed)
    with open(data_dir / "X.npy", "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                  "fortran_order": False, "shape": (rows, d)}  # fmt: skip
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, rows, chunk):
            rng.random((min(chunk, rows - start), d), dtype=np.float32).tofile(f)
    np.save(data_dir / "y.npy", rng.integers(0, k, size=rows))


def _profile(run, lib: str, bs: str, samples: int) -> None:
    import cProfile
    import pstats

    run(samples)  # one more run at full size, so that the profiled one is warm
    profiler = cProfile.Profile()
    profiler.enable()
    seconds, updates, _ = run(samples)
    profiler.disable()
    print(f"{lib}, batch size {bs}, {samples} samples, {updates} updates: {seconds:.3f} s "
          "(under the profiler)")  # fmt: skip
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable cores": affinity,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for dist in ("torch", "jax", "jaxlib", "scikit-learn"):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = "not installed"
    try:
        from threadpoolctl import threadpool_info

        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        info["numpy BLAS"] = ", ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
            f"{p.get('num_threads')} threads)"
            for p in blas
        )
    except ImportError:
        info["numpy BLAS"] = "unknown (install threadpoolctl to see it)"
    if hasattr(os, "getloadavg"):
        info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "XLA_FLAGS", "JAX_PLATFORMS"):  # fmt: skip
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def cpu_busy_fraction(interval: float = 1.0) -> float | None:
    """Fraction of all CPUs' time spent busy over ``interval`` seconds (from /proc/stat)."""

    def sample():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return 1 - (idle1 - idle0) / total if total > 0 else None


def measure_gemm(size: int, repeats: int = 5) -> float:
    """float32 GEMM rate of NumPy's BLAS in GFLOP/s: best of ``repeats`` square products."""
    rng = np.random.default_rng(0)
    A = rng.random((size, size), dtype=np.float32)
    B = rng.random((size, size), dtype=np.float32)
    C = np.empty_like(A)
    np.matmul(A, B, out=C)  # warm-up
    best = min(_timed(lambda: np.matmul(A, B, out=C)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def measure_model_gemms(n: int, seed: int, repeats: int = 3) -> float:
    """Seconds for just the five matmuls of one full-batch epoch, in NumPy: a lower bound."""
    d, h, k = SIZES
    X, _ = make_data(n, seed)
    rng = np.random.default_rng(seed + 1)
    W1 = rng.random((d, h), dtype=np.float32)
    W2 = rng.random((h, k), dtype=np.float32)
    dz2 = rng.random((n, k), dtype=np.float32)

    def epoch():
        a1 = X @ W1
        _ = a1 @ W2
        _ = a1.T @ dz2
        dz1 = dz2 @ W2.T
        _ = X.T @ dz1

    epoch()
    return min(_timed(epoch) for _ in range(repeats))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_worker(wkey: str, lib: str, bs: str, samples: int, args, data_dir=None) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", lib, bs, "--workload", wkey,
        "--samples", str(samples), "--repeats", str(args.repeats), "--seed", str(args.seed),
    ]  # fmt: skip
    if data_dir is not None:
        cmd += ["--data", str(data_dir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"worker failed (exit {proc.returncode}): {tail}"}


def samples_for(wkey: str, bs: str, args) -> int:
    """Samples per epoch of one (workload, batch size) cell."""
    plan = args.plan[wkey]
    return min(plan["subset"].get(bs, plan["n"]), plan["n"])


def _ok(r: dict | None) -> bool:
    return bool(r) and "error" not in r


def rate(r: dict) -> float:
    return r["samples"] / r["best"]


def fmt_rate(r: dict | None) -> str:
    if r is None:
        return "—"
    if "error" in r:
        return "error"
    return f"{rate(r):,.0f}"


def fmt_ratio(a: dict | None, b: dict | None) -> str:
    if not _ok(a) or not _ok(b):
        return "—"
    return f"{rate(a) / rate(b):.2f}×"


def fmt_mem(r: dict | None) -> str:
    return f"{r['peak_mib']:.0f}" if _ok(r) else "—"


def batch_label(wkey: str, bs: str, args) -> str:
    return f"full ({samples_for(wkey, bs, args):,})" if bs == "full" else bs


# Targets of issue 5: (workload, batch size, kind, peer, threshold). Kinds: "speed" (descend's
# samples/s over the peer's >= threshold), "gemm" (full-batch GFLOP/s over the machine's GEMM rate
# >= threshold), "memory" (descend's peak MB <= the peer's), "ooc" (peak MB above the process's
# start < threshold). Every (workload, batch size) but "ooc" also gets >= 1.5x sklearn and
# memory <= PyTorch's.
SPECIFIC_TARGETS = [
    ("mlp", "1", "speed", "jax", 1.0),
    ("mlp", "32", "speed", "jax", 1.0),
    ("mlp", "128", "speed", "torch", 1.2),
    ("mlp", "128", "speed", "jax", 1.0),
    ("mlp", "full", "speed", "torch", 1.2),
    ("mlp", "full", "speed", "jax", 1.0),
    ("mlp", "full", "gemm", None, 0.65),
    ("bce", "1", "speed", "torch", 3.0),
    ("bce", "32", "speed", "jax", 1.0),
    ("deep", "128", "speed", "torch", 1.1),
    ("predict", str(PREDICT_CHUNK), "speed", "torch", 1.2),
    ("ooc", "256", "ooc", None, OOC_LIMIT_MB),
    ("residual", "32", "speed", "descend_eager", 2.0),
    ("residual", "32", "speed", "torch", 1.0),
]


def targets_for(wkey: str, bs: str) -> list[tuple]:
    found = [t for t in SPECIFIC_TARGETS if t[0] == wkey and t[1] == bs]
    if wkey not in ("ooc", "residual"):
        found += [(wkey, bs, "speed", "sklearn", 1.5), (wkey, bs, "memory", "torch", None)]
    return found


def evaluate_target(target, results, gemm_rate) -> tuple[str, str, str]:
    """(target text, measured text, PASS / MISS / n/a)."""
    wkey, bs, kind, peer, threshold = target
    mine = results.get((wkey, "descend", bs))
    other = results.get((wkey, peer, bs)) if peer else None
    if kind == "speed":
        text = f"≥ {LIB_NAMES[peer]}" if threshold == 1.0 else f"≥ {threshold}× {LIB_NAMES[peer]}"
        if not _ok(mine) or not _ok(other):
            return text, "—", "n/a"
        ratio = rate(mine) / rate(other)
        return text, f"{ratio:.2f}×", "PASS" if ratio >= threshold else "MISS"
    if kind == "memory":
        text = f"peak MB ≤ {LIB_NAMES[peer]}'s"
        if not _ok(mine) or not _ok(other):
            return text, "—", "n/a"
        a, b = mine["peak_mib"], other["peak_mib"]
        return text, f"{a:.0f} vs {b:.0f} MB", "PASS" if round(a) <= round(b) else "MISS"
    if kind == "gemm":
        text = f"≥ {100 * threshold:.0f}% of GEMM GFLOP/s"
        if not _ok(mine) or not gemm_rate:
            return text, "—", "n/a"
        achieved = gemm_flops_per_sample(WORKLOADS[wkey].sizes) * rate(mine) / 1e9
        pct = achieved / gemm_rate
        return text, f"{100 * pct:.0f}%", "PASS" if pct >= threshold else "MISS"
    text = f"peak < {threshold} MB above the process's start"
    if not _ok(mine):
        return text, "—", "n/a"
    peak = mine["peak_mib"]
    return text, f"{peak:.0f} MB", "PASS" if peak < threshold else "MISS"


def describe_workloads(args) -> list[str]:
    lines = []
    for wkey in args.workloads:
        w = WORKLOADS[wkey]
        n = args.plan[wkey]["n"]
        if wkey == "mlp":
            what = ("ReLU, softmax + cross-entropy, one epoch on synthetic MNIST-shaped data "
                    f"(n={n:,})")  # fmt: skip
        elif wkey == "bce":
            what = (f"ReLU hidden layer, sigmoid output + binary cross-entropy, one epoch on the "
                    f"standardised breast-cancer training split (n={n})")  # fmt: skip
        elif wkey == "deep":
            what = f"ReLU, softmax + cross-entropy, one epoch on MNIST-shaped data (n={n:,})"
        elif wkey == "predict":
            what = (f"class probabilities of {n:,} MNIST-shaped samples in chunks of "
                    f"{PREDICT_CHUNK} (untrained weights; forward pass only)")  # fmt: skip
        elif wkey == "residual":
            what = ("a user's own Module: x -> h = relu(x W0 + b0) -> h + (relu(h W1 + b1) W2 + "
                    "b2) -> softmax(. W3 + b3), cross-entropy, one epoch on synthetic data "
                    f"(n={n:,}); compiled (the default) against eager (compile=False) and "
                    "PyTorch eager")  # fmt: skip
        else:
            what = (f"softmax + cross-entropy, one epoch over a memory-mapped {n:,} × "
                    f"{w.sizes[0]} float32 .npy file ({n * w.sizes[0] * 4 / 2**20:,.0f} MB), "
                    "descend only")  # fmt: skip
        lines.append(f"- **{w.title}** (`{wkey}`, {w.arch}): {what}.")
    return lines


def build_report(results, args, libs, gemm_rate, model_gemm_s) -> list[str]:
    peers = [lib for lib in libs if lib != "descend"]
    lines = [
        f"Plain gradient descent (lr={LR}), float32. Time: best of {args.repeats} "
        f"run{'s' if args.repeats > 1 else ''} after a warm-up (prediction best of "
        f"{max(args.repeats, WORKLOADS['predict'].min_repeats)}, the 30-16-1 net best of "
        f"{max(args.repeats, WORKLOADS['bce'].min_repeats)}, the residual block best of "
        f"{max(args.repeats, WORKLOADS['residual'].min_repeats)}; and runs repeated until they "
        f"take at least {MIN_TIMED_SECONDS:g} s, up to {MAX_REPEATS}, so that the best of a "
        "run of a millisecond is not decided by a pause of the machine); each (workload, "
        "library, batch "
        f"size) in {args.processes} subprocess{'es' if args.processes > 1 else ''} (the "
        "libraries in turns), the fastest kept. Samples per second; ratios > 1 mean descend is "
        "faster. "
        "Peak MB: peak RSS growth during the warm-up and the timed runs, the largest of the "
        "subprocesses (MB = 2^20 bytes).",
        "",
        *describe_workloads(args),
        "",
    ]
    in_memory = [wkey for wkey in args.workloads if wkey != "ooc"]
    if in_memory:
        lines += _report_rates(results, args, libs, peers, in_memory)
    if "ooc" in args.workloads:
        lines += _report_ooc(results, args)
    lines += _report_targets(results, args, gemm_rate)
    lines += _report_gemm(results, args, libs, gemm_rate, model_gemm_s)
    if in_memory:
        lines += _report_gflops(results, args, libs, gemm_rate, in_memory)
    return lines


def _report_rates(results, args, libs, peers, in_memory) -> list[str]:
    """The table of samples/s, ratios and peak memory of the in-memory workloads."""
    lines: list[str] = []
    lines += [
        "| workload | batch size | samples | "
        + " | ".join(LIB_NAMES[lib] for lib in libs)
        + " | "
        + " | ".join(f"descend/{LIB_NAMES[p]}" for p in peers)
        + f" | peak MB ({' / '.join(LIB_NAMES[lib] for lib in libs)}) |",
        "| --- | --- |" + " ---: |" * (2 * len(libs) + 1),
    ]
    for wkey in in_memory:
        for bs in args.plan[wkey]["batches"]:
            row = {lib: results.get((wkey, lib, bs)) for lib in libs}
            lines.append(
                f"| {WORKLOADS[wkey].title} | {batch_label(wkey, bs, args)} | "
                f"{samples_for(wkey, bs, args):,} | "
                + " | ".join(fmt_rate(row[lib]) for lib in libs)
                + " | "
                + " | ".join(fmt_ratio(row["descend"], row[p]) for p in peers)
                + f" | {' / '.join(fmt_mem(row[lib]) for lib in libs)} |"
            )
    notes = []
    for wkey in in_memory:
        for bs in args.plan[wkey]["batches"]:
            if samples_for(wkey, bs, args) < args.plan[wkey]["n"]:
                notes.append(
                    f"{WORKLOADS[wkey].title} at batch size {bs}: one epoch of the first "
                    f"{samples_for(wkey, bs, args):,} samples, for every library; compare "
                    "samples/s."
                )
    if notes:
        lines += ["", *notes]
    return lines


def _report_ooc(results, args) -> list[str]:
    """The out-of-core row and its memory."""
    lines: list[str] = []
    w = WORKLOADS["ooc"]
    r = results.get(("ooc", "descend", w.batch_sizes[0]))
    rows = args.plan["ooc"]["n"]
    lines += [
        "",
        f"Out-of-core: descend, {w.arch} softmax, batch size {w.batch_sizes[0]}, one epoch "
        f"over a memory-mapped {rows:,} × {w.sizes[0]} float32 `.npy` "
        "(`np.load(path, mmap_mode='r')`, labels in a second memory-mapped `.npy`), shuffled. "
        "The file was just written, so it is read from the page cache.",
        "",
        "| samples/s | epoch s | updates | peak MB above the process's start | peak MB of the "
        "epoch (above the RSS before it) | peak RSS: anonymous / file-backed MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    if _ok(r):
        lines.append(
            f"| {rate(r):,.0f} | {r['best']:.2f} | {r['updates']:,} | {r['peak_mib']:.0f} | "
            f"{r['fit_peak_mib']:.0f} | {r['anon_peak_mib']:.0f} / {r['file_peak_mib']:.0f} |"
        )
    else:
        lines.append(f"| {(r or {}).get('error', 'not run')} | | | | | |")
    lines.append("")
    lines.append(
        "The process's start: the worker's RSS before descend is imported and the file "
        f"opened (Python and NumPy loaded: {r['start_rss_mib']:.0f} MB)."
        if _ok(r)
        else ""
    )
    return lines


def _report_targets(results, args, gemm_rate) -> list[str]:
    """The targets of issue 5, PASS or MISS, and their count."""
    lines: list[str] = []
    lines += [
        "",
        "Targets (issue 5):",
        "",
        "| workload | batch size | target | measured | result |",
        "| --- | --- | --- | ---: | --- |",
    ]
    counts = {"PASS": 0, "MISS": 0, "n/a": 0}
    for wkey in args.workloads:
        for bs in args.plan[wkey]["batches"]:
            for target in targets_for(wkey, bs):
                text, measured, verdict = evaluate_target(target, results, gemm_rate)
                counts[verdict] += 1
                shown = f"**{verdict}**" if verdict == "MISS" else verdict
                lines.append(
                    f"| {WORKLOADS[wkey].title} | {batch_label(wkey, bs, args)} | {text} | "
                    f"{measured} | {shown} |"
                )
    lines += ["", f"{counts['PASS']} PASS, {counts['MISS']} MISS, {counts['n/a']} not measured."]
    return lines


def _report_gemm(results, args, libs, gemm_rate, model_gemm_s) -> list[str]:
    """The GEMM rate, the FLOP count of the full-batch epoch and the full-batch rates."""
    lines: list[str] = []
    lines.append("")
    if gemm_rate is not None:
        lines.append(
            f"float32 GEMM ({args.gemm_size}×{args.gemm_size} @ {args.gemm_size}×"
            f"{args.gemm_size}, NumPy, best of 5): **{gemm_rate:.1f} GFLOP/s**"
        )
    if "mlp" in args.workloads:
        n = samples_for("mlp", "full", args)
        flops_sample = gemm_flops_per_sample(SIZES)
        fwd = gemm_flops_per_sample(SIZES, backward=False) * n
        total = flops_sample * n
        lines.append(
            f"MLP 784-256-10 full-batch epoch, n={n:,}: {total / 1e9:.2f} GFLOP in matmuls "
            f"(forward {fwd / 1e9:.2f} + backward {(total - fwd) / 1e9:.2f}, no dC/dX for the "
            f"input layer); element-wise work adds ≈{elementwise_flops(n) / 1e9:.3f} GFLOP."
        )
        if model_gemm_s is not None:
            lines.append(
                f"The five matmuls of that epoch alone, in NumPy: {model_gemm_s:.3f} s "
                f"({total / model_gemm_s / 1e9:.1f} GFLOP/s): the floor for a NumPy full-batch "
                "epoch."
            )
        for lib in libs:
            r = results.get(("mlp", lib, "full"))
            if not _ok(r):
                continue
            achieved = flops_sample * rate(r) / 1e9
            pct = f" = {100 * achieved / gemm_rate:.0f}% of the GEMM rate" if gemm_rate else ""
            lines.append(
                f"- {LIB_NAMES[lib]} full batch: {r['best']:.3f} s → {achieved:.1f} GFLOP/s{pct}"
            )
    return lines


def _report_gflops(results, args, libs, gemm_rate, in_memory) -> list[str]:
    """Achieved GFLOP/s of every cell, and the memory of the timed runs alone."""
    lines: list[str] = []
    lines += [
        "",
        "Achieved GFLOP/s (matmul FLOPs / time; % of the GEMM rate), and the peak MB of the "
        "timed runs alone (over the RSS after the warm-up, i.e. without one-off costs of first "
        "use such as PyTorch's first layer or JAX's compilation):",
        "",
        "| workload | batch size | "
        + " | ".join(f"{LIB_NAMES[lib]} GFLOP/s" for lib in libs)
        + " | timed-runs peak MB ("
        + " / ".join(LIB_NAMES[lib] for lib in libs)
        + ") |",
        "| --- | --- |" + " ---: |" * (len(libs) + 1),
    ]
    for wkey in in_memory:
        w = WORKLOADS[wkey]
        flops_sample = gemm_flops_per_sample(w.sizes, backward=not w.predict)
        for bs in args.plan[wkey]["batches"]:
            cells, mems = [], []
            for lib in libs:
                r = results.get((wkey, lib, bs))
                if not _ok(r):
                    cells.append("—")
                    mems.append("—")
                    continue
                g = flops_sample * rate(r) / 1e9
                pct = f" ({100 * g / gemm_rate:.0f}%)" if gemm_rate else ""
                cells.append(f"{g:.1f}{pct}")
                mems.append(f"{r['steady_peak_mib']:.0f}")
            lines.append(
                f"| {w.title} | {bs} | " + " | ".join(cells) + " | " + " / ".join(mems) + " |"
            )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="descend vs PyTorch, JAX and scikit-learn on the workloads of issue 5."
    )
    parser.add_argument(
        "--workloads", default=DEFAULT_WORKLOADS,
        help=f"comma-separated subset of {DEFAULT_WORKLOADS} (default all)",
    )  # fmt: skip
    parser.add_argument(
        "--n", type=int, default=None,
        help=f"samples per epoch of the MLP 784-256-10 workload ({DEFAULT_N:,})",
    )  # fmt: skip
    parser.add_argument(
        "--batch-sizes", default=DEFAULT_BATCH_SIZES,
        help="MLP 784-256-10: comma-separated batch sizes, integers or 'full' (1,32,128,full)",
    )  # fmt: skip
    parser.add_argument(
        "--libs", default=",".join(LIBS), help=f"comma-separated subset of {','.join(LIBS)}"
    )
    parser.add_argument(
        "--samples", default=None,
        help="MLP 784-256-10: per-batch-size sample counts, e.g. '1=2000,32=10000' (default "
        "1=5000, others n); with --worker: the worker's sample count",
    )  # fmt: skip
    parser.add_argument(
        "--ooc-rows", type=int, default=None,
        help=f"rows of the memory-mapped file ({OOC_ROWS:,}; --quick: 200,000)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, best is kept (3)")
    parser.add_argument(
        "--processes", type=int, default=3,
        help="worker processes per cell, taken in turns with the other libraries; the fastest "
        "is kept (3): on a shared virtual machine the machine runs 10-40%% slow for seconds "
        "to minutes at a time",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gemm-size", type=int, default=2048, help="square GEMM size (2048)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report to PATH")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run: small epochs (MLP n=2,000, batch size 1 on 200 samples, memory-mapped "
        "file of 200,000 rows), 1 repeat, GEMM 512",
    )  # fmt: skip
    parser.add_argument("--worker", nargs=2, metavar=("LIB", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--workload", default="mlp", choices=sorted(WORKLOADS),
        help="with --worker: which workload (default mlp)",
    )  # fmt: skip
    parser.add_argument("--data", help=argparse.SUPPRESS)  # with --worker, ooc: the directory
    parser.add_argument(
        "--profile", action="store_true",
        help="with --worker: print a cProfile of one run (cumulative) instead of timing",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.worker:
        return _worker_main(args, parser)
    _plan_run(args, parser)
    libs = _libs(args, parser)

    t_start = time.perf_counter()
    info = machine_info()
    notes = _busy_note(info)
    print("Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    available = _available(libs, notes)
    for note in notes:
        print(note, flush=True)
    results = _run_all(args, available)
    _thread_info(results, info)

    gemm_rate = measure_gemm(args.gemm_size)
    model_gemm_s = None
    if "mlp" in args.workloads:
        model_gemm_s = measure_model_gemms(samples_for("mlp", "full", args), args.seed)
    info["float32 GEMM GFLOP/s"] = f"{gemm_rate:.1f} ({args.gemm_size}×{args.gemm_size}, NumPy)"
    report = build_report(results, args, available, gemm_rate, model_gemm_s)
    report.append("")
    if hasattr(os, "getloadavg"):
        report.append(
            "Load average (1, 5, 15 min) at the start: "
            f"{info.get('load average at start')}, at the end: "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
            + "; other processes running at the same time distort the timings."
        )
    report += notes
    total = time.perf_counter() - t_start
    print()
    print("Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()))
    print()
    print("\n".join(report))
    print(f"\nTotal runtime: {total:.0f} s")
    if args.markdown:
        _write_markdown(args, argv, info, report, total)
    return 0


def _worker_main(args, parser) -> int:
    lib, bs = args.worker
    w = WORKLOADS[args.workload]
    if lib not in w.libs:
        parser.error(f"--worker LIB must be one of {', '.join(w.libs)} for {w.key}")
    samples = int(args.samples) if args.samples else (args.n or w.n)
    if w.key == "ooc":
        if not args.data:
            parser.error("--workload ooc needs --data DIR (with X.npy and y.npy)")
        worker_ooc(parse_batch(bs), samples, args.data)
    else:
        worker(w.key, lib, parse_batch(bs), samples, args.repeats, args.seed, args.profile)
    return 0


def _plan_run(args, parser) -> None:
    """args.workloads as a list, and args.plan: per workload its samples and batch sizes."""
    workloads = [wk.strip() for wk in args.workloads.split(",") if wk.strip()]
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown --workloads {unknown}; choose from {DEFAULT_WORKLOADS}")
    args.workloads = workloads
    if args.quick:
        args.repeats, args.gemm_size, args.processes = 1, 512, 1
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    mlp_samples = dict(WORKLOADS["mlp"].quick_subset if args.quick else DEFAULT_SAMPLES)
    if args.samples:
        for item in args.samples.split(","):
            key, _, value = item.partition("=")
            if not value.strip().isdigit():
                parser.error(f"--samples expects BATCH=COUNT items, got {item!r}")
            mlp_samples[parse_batch(key)] = int(value)
    args.plan = {}
    for wkey in workloads:
        w = WORKLOADS[wkey]
        plan = {
            "n": w.quick_n if args.quick else w.n,
            "subset": dict(w.quick_subset if args.quick else w.subset),
            "batches": list(w.batch_sizes),
        }
        if wkey == "mlp":
            plan["n"] = args.n or plan["n"]
            plan["subset"] = mlp_samples
            plan["batches"] = [parse_batch(b) for b in args.batch_sizes.split(",") if b.strip()]
        if wkey == "ooc" and args.ooc_rows:
            plan["n"] = args.ooc_rows
        args.plan[wkey] = plan


def _libs(args, parser) -> list[str]:
    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    unknown = sorted(set(libs) - set(LIBS))
    if unknown:
        parser.error(f"unknown --libs {unknown}; choose from {', '.join(LIBS)}")
    if "descend" not in libs:
        libs.insert(0, "descend")  # the subject of every ratio
    return libs


def _busy_note(info: dict) -> list[str]:
    busy = cpu_busy_fraction()
    if busy is None:
        return []
    info["CPU busy before the run"] = f"{100 * busy:.0f}%"
    if busy <= 0.15:
        return []
    return [
        f"Warning: other processes kept the CPUs {100 * busy:.0f}% busy just before the "
        "run. They slow every library, and PyTorch's OpenMP threads badly at small batches "
        "(they wait for each other when one is descheduled); rerun on an idle machine for "
        "numbers to quote."
    ]


def _available(libs: list[str], notes: list[str]) -> list[str]:
    available = []
    for lib in libs:
        if MODULES[lib] == "descend" or importlib.util.find_spec(MODULES[lib]) is not None:
            available.append(lib)
        else:
            notes.append(
                f"{LIB_NAMES[lib]} is not installed: skipped (pip install 'descend[bench]' to "
                "include it)."
            )
    return available


def _run_all(args, available: list[str]) -> dict:
    results: dict = {}
    for wkey in args.workloads:
        w = WORKLOADS[wkey]
        print(f"{w.title}:", flush=True)
        for bs in args.plan[wkey]["batches"]:
            libs = [lib for lib in available if lib in w.libs]
            samples = samples_for(wkey, bs, args)
            runs: dict[str, list] = {lib: [] for lib in libs}
            for _ in range(1 if wkey == "ooc" else args.processes):
                for lib in libs:  # in turns: a slow spell of the machine hits every library
                    if wkey == "ooc":
                        runs[lib].append(run_ooc(bs, samples, args))
                    else:
                        runs[lib].append(run_worker(wkey, lib, bs, samples, args))
            for lib in libs:
                r = results[(wkey, lib, bs)] = fastest(runs[lib])
                print(f"  {LIB_NAMES[lib]:>8} batch {bs:>5} ({samples:,} samples): "
                      f"{progress_line(r)}", flush=True)  # fmt: skip
    return results


def fastest(runs: list[dict]) -> dict:
    """The fastest of one cell's worker runs, with the largest peak memory of them all."""
    ok = [r for r in runs if _ok(r)]
    if not ok:
        return runs[0]
    best = dict(min(ok, key=lambda r: r["best"]))
    for key in ("peak_mib", "steady_peak_mib"):
        if all(key in r for r in ok):
            best[key] = max(r[key] for r in ok)
    best["processes"] = len(runs)
    return best


def _thread_info(results: dict, info: dict) -> None:
    """Threads as each library sees them at its defaults."""
    torch_info = next(
        (r["info"] for (_, lib, _), r in results.items() if lib == "torch" and _ok(r)), None
    )
    if torch_info:
        line = (
            f"torch threads: {torch_info['torch_threads']} intra-op, "
            f"{torch_info['torch_interop_threads']} inter-op"
        )
        print(line)
        info["torch threads"] = line.split(": ", 1)[1]
    jax_info = next(
        (r["info"] for (_, lib, _), r in results.items() if lib == "jax" and _ok(r)), None
    )
    if jax_info:
        info["jax devices"] = jax_info["jax_devices"]


def _write_markdown(args, argv, info: dict, report: list[str], total: float) -> None:
    command = " ".join(
        ["python benchmarks/bench_mlp.py", *(sys.argv[1:] if argv is None else argv)]
    )
    header = [
        "# descend benchmark: descend vs PyTorch, JAX and scikit-learn",
        "",
        f"Run {datetime.datetime.now().isoformat(timespec='seconds')} with "
        f"`{command}` (total runtime {total:.0f} s).",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
    ]
    path = Path(args.markdown)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(header + report) + "\n")
    tmp.replace(path)
    print(f"Wrote {path}")


def run_ooc(bs: str, rows: int, args) -> dict:
    """Write the memory-mapped data set to a temporary directory, train on it, delete it."""
    data_dir = Path(tempfile.mkdtemp(prefix="descend-bench-"))
    try:
        t0 = time.perf_counter()
        write_ooc_data(data_dir, rows, args.seed)
        print(f"  (wrote {rows:,} × {WORKLOADS['ooc'].sizes[0]} float32 to {data_dir} in "
              f"{time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
        return run_worker("ooc", "descend", bs, rows, args, data_dir=data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def progress_line(r: dict) -> str:
    if "error" in r:
        return r["error"]
    if r["workload"] == "ooc":
        return (
            f"{rate(r):>10,.0f} samples/s  {r['best']:.2f} s  {r['updates']} updates  "
            f"peak +{r['peak_mib']:.0f} MB above the start (epoch +{r['fit_peak_mib']:.0f} MB; "
            f"anonymous {r['anon_peak_mib']:.0f} MB, file-backed {r['file_peak_mib']:.0f} MB)  "
            f"loss {r['loss']:.4f}"
        )
    loss = "" if r["loss"] is None else f"  loss {r['loss']:.4f}"
    return (
        f"{rate(r):>10,.0f} samples/s  best {r['best']:.3f} s  median {r['median']:.3f} s  "
        f"{r['updates']} {'chunks' if r['workload'] == 'predict' else 'updates'}  "
        f"peak +{r['peak_mib']:.0f} MB (timed runs alone +{r['steady_peak_mib']:.0f} MB){loss}"
    )


if __name__ == "__main__":
    sys.exit(main())
