"""Benchmark: one epoch of training an MLP 784-256-10 with descend, PyTorch and scikit-learn.

The network is the textbook MNIST classifier: 784 inputs, one hidden layer of 256 ReLU units,
10 softmax outputs, categorical cross-entropy, plain gradient descent (lr 0.01), float32. The
data is MNIST-shaped and synthetic: X uniform in [0, 1) of shape (n, 784), labels 0-9.

Every (library, batch size) pair is measured in a fresh subprocess (this script run with
``--worker LIB BATCH``), so that one library's threads, caches and allocator do not affect
another's, and so that the peak memory of each training run can be read from the kernel.

Usage::

    python benchmarks/bench_mlp.py                      # default: n=20,000, batch 1, 32, 128, full
    python benchmarks/bench_mlp.py --quick              # smoke run, a few seconds
    python benchmarks/bench_mlp.py --markdown benchmarks/RESULTS.md
    python benchmarks/bench_mlp.py --libs descend,torch --batch-sizes 32,full --repeats 5
    python benchmarks/bench_mlp.py --worker descend 32 --samples 20000 --profile   # cProfile

See benchmarks/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = (784, 256, 10)
LR = 0.01
LIBS = ("descend", "torch", "sklearn")
LIB_NAMES = {"descend": "descend", "torch": "PyTorch", "sklearn": "sklearn"}
DEFAULT_N = 20_000
DEFAULT_BATCH_SIZES = "1,32,128,full"
# Batch size 1 costs one Python-level update per sample in every library (and sklearn's is
# slow), so it is measured on a subset; throughput (samples/s) stays comparable.
DEFAULT_SAMPLES = {"1": 5_000}
RESULT_TAG = "RESULT "
HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped synthetic data: float32 pixels in [0, 1), integer labels 0-9."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], size=n)
    return X, y


def gemm_flops_per_sample() -> int:
    """Matrix-multiply FLOPs of one sample's forward + backward pass (2 per multiply-add).

    Forward: x @ W1 (784x256) and a1 @ W2 (256x10). Backward: dW2 = a1^T dz2, da1 = dz2 W2^T,
    dW1 = x^T dz1; dC/dx of the first layer is not needed and not computed (by any library).
    """
    d, h, k = SIZES
    forward = 2 * (d * h + h * k)
    backward = 2 * (h * k + k * h + d * h)
    return forward + backward


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


def _maxrss_kib() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux


# --------------------------------------------------------------------------------------------
# Workers: each trains one epoch the way that library's users write it
# --------------------------------------------------------------------------------------------


def _import_descend():
    try:
        import descend
    except ImportError:  # running from a checkout without the package installed
        sys.path.insert(0, str(HERE.parent / "src"))
        import descend
    return descend


def setup_descend(X, y, bs):
    ds = _import_descend()
    batch_size = "full" if bs == "full" else int(bs)

    def run(X=X, y=y):
        model = ds.nn.mlp([*SIZES], output_activation="softmax", seed=0)
        t0 = time.perf_counter()
        history = ds.fit(
            model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(LR),
            batch_size=batch_size, epochs=1, shuffle=True, seed=0, progress=False, metrics=None,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        return seconds, history.n_updates, float(history.epoch["loss"][0])

    return run, {"descend": ds.__version__ if hasattr(ds, "__version__") else "?"}


def setup_torch(X, y, bs):
    import torch
    import torch.nn.functional as F
    from torch import nn

    info = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }

    def run(X=X, y=y):
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64, copy=False))  # no copy
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(*SIZES[1:]))
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        n = len(Xt)
        k = n if bs == "full" else int(bs)
        updates = 0
        t0 = time.perf_counter()
        if k >= n:  # full batch: the data itself, as descend (nothing to shuffle)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(Xt), yt)
            loss.backward()
            opt.step()
            updates = 1
        else:
            perm = torch.randperm(n)
            for start in range(0, n, k):
                idx = perm[start : start + k]
                xb, yb = Xt[idx], yt[idx]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                updates += 1
        seconds = time.perf_counter() - t0
        return seconds, updates, float(loss.detach())

    return run, info


def setup_sklearn(X, y, bs):
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def run(X=X, y=y):
        k = len(X) if bs == "full" else int(bs)
        clf = MLPClassifier(
            hidden_layer_sizes=(SIZES[1],), activation="relu", solver="sgd", momentum=0.0,
            learning_rate="constant", learning_rate_init=LR, batch_size=k, max_iter=1,
            shuffle=True, alpha=0.0, tol=0.0, n_iter_no_change=10**9, early_stopping=False,
            random_state=0,
        )  # fmt: skip
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # max_iter=1 always "fails to converge": that is the point.
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        seconds = time.perf_counter() - t0
        if clf.n_iter_ != 1 or clf.t_ != len(X):  # not exactly one epoch: not the same work
            raise RuntimeError(f"sklearn ran {clf.n_iter_} epochs over {clf.t_} samples")
        return seconds, -(-len(X) // k), float(clf.loss_)

    return run, {"sklearn": sklearn.__version__}


SETUPS = {"descend": setup_descend, "torch": setup_torch, "sklearn": setup_sklearn}


def worker(lib: str, bs: str, samples: int, repeats: int, seed: int, profile: bool) -> None:
    X, y = make_data(samples, seed)
    run, info = SETUPS[lib](X, y, bs)
    mem = PeakMemory()
    mem.start()
    # Warm-up: a short run (a few updates, or a full batch of at most 2,000 samples) that loads
    # lazily imported code and lets the allocators and BLAS/OpenMP threads start.
    warm = min(samples, 2_000) if bs == "full" else min(samples, max(4 * int(bs), 64))
    run(X[:warm], y[:warm])
    warm_peak = mem.peak_mib()
    if profile:
        _profile(run, lib, bs, samples)
        return
    # The timed runs' own peak, over the RSS after the warm-up: without one-off costs (code
    # pages, thread stacks, lazily initialised pools) that the first use of a library brings.
    after_warmup = mem.rss_mib()
    steady = PeakMemory()
    steady.start()
    times, updates, loss = [], 0, float("nan")
    for _ in range(repeats):
        seconds, updates, loss = run()
        times.append(seconds)
    steady_peak = steady.peak_mib()
    result = {
        "lib": lib, "batch": bs, "samples": samples, "updates": updates, "times": times,
        "best": min(times), "median": float(np.median(times)),
        "peak_mib": max(warm_peak, after_warmup + steady_peak), "steady_peak_mib": steady_peak,
        "memory_method": mem.method, "loss": loss, "info": info,
    }  # fmt: skip
    print(RESULT_TAG + json.dumps(result), flush=True)


def _profile(run, lib: str, bs: str, samples: int) -> None:
    import cProfile
    import pstats

    run()  # one more run at full size, so that the profiled one is warm
    profiler = cProfile.Profile()
    profiler.enable()
    seconds, updates, _ = run()
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
    for dist in ("torch", "scikit-learn"):
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
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
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


def run_worker(lib: str, bs: str, samples: int, args) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", lib, bs,
        "--samples", str(samples), "--repeats", str(args.repeats), "--seed", str(args.seed),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"worker failed (exit {proc.returncode}): {tail}"}


def samples_for(bs: str, args) -> int:
    if bs in args.samples_map:
        return min(args.samples_map[bs], args.n)
    return args.n


def fmt_rate(r: dict | None) -> str:
    if r is None:
        return "—"
    if "error" in r:
        return "error"
    return f"{r['samples'] / r['best']:,.0f}"


def fmt_ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or "error" in a or "error" in b:
        return "—"
    return f"{(a['samples'] / a['best']) / (b['samples'] / b['best']):.2f}×"


def fmt_mem(r: dict | None) -> str:
    if not r or "error" in r:
        return "—"
    return f"{r['peak_mib']:.0f}"


def build_report(results, batch_sizes, libs, args, gemm_rate, model_gemm_s) -> list[str]:
    lines = [
        f"MLP {'-'.join(map(str, SIZES))} (ReLU, softmax + cross-entropy), GD lr={LR}, float32, "
        f"one epoch on synthetic MNIST-shaped data (n={args.n:,}). Time: best of {args.repeats} "
        f"run{'s' if args.repeats > 1 else ''} after a warm-up; each (library, batch size) in its "
        f"own subprocess. Ratios > 1 mean descend is faster. Peak MB: peak RSS growth during "
        f"training (MB = 2^20 bytes).",
        "",
        "| batch size | samples | descend samples/s | PyTorch samples/s | sklearn samples/s "
        "| descend/PyTorch | descend/sklearn | peak MB (descend / torch / sklearn) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for bs in batch_sizes:
        row = {lib: results.get((lib, bs)) for lib in LIBS}
        samples = samples_for(bs, args)
        label = "full" if bs == "full" else bs
        if bs == "full":
            label = f"full ({samples:,})"
        lines.append(
            f"| {label} | {samples:,} | {fmt_rate(row['descend'])} | {fmt_rate(row['torch'])} | "
            f"{fmt_rate(row['sklearn'])} | {fmt_ratio(row['descend'], row['torch'])} | "
            f"{fmt_ratio(row['descend'], row['sklearn'])} | "
            f"{' / '.join(fmt_mem(row[lib]) for lib in LIBS)} |"
        )
    subset = [bs for bs in batch_sizes if samples_for(bs, args) < args.n]
    if subset:
        lines.append("")
        lines.append(
            "Batch size " + ", ".join(subset) + ": measured on the first "
            + ", ".join(f"{samples_for(bs, args):,}" for bs in subset)
            + " samples (one epoch of that subset) for every library; compare samples/s."
        )  # fmt: skip

    flops_sample = gemm_flops_per_sample()
    lines.append("")
    if gemm_rate is not None:
        lines.append(
            f"float32 GEMM ({args.gemm_size}×{args.gemm_size} @ {args.gemm_size}×"
            f"{args.gemm_size}, NumPy, best of 5): **{gemm_rate:.1f} GFLOP/s**"
        )
    n = samples_for("full", args)
    fwd = 2 * n * (SIZES[0] * SIZES[1] + SIZES[1] * SIZES[2])
    total = flops_sample * n
    lines.append(
        f"Full-batch epoch, n={n:,}: {total / 1e9:.2f} GFLOP in matmuls (forward "
        f"{fwd / 1e9:.2f} + backward {(total - fwd) / 1e9:.2f}, no dC/dX for the input layer); "
        f"element-wise work adds ≈{elementwise_flops(n) / 1e9:.3f} GFLOP."
    )
    if model_gemm_s is not None:
        lines.append(
            f"The five matmuls of that epoch alone, in NumPy: {model_gemm_s:.3f} s "
            f"({total / model_gemm_s / 1e9:.1f} GFLOP/s): the floor for a NumPy full-batch epoch."
        )
    full_results = [(lib, results.get((lib, "full"))) for lib in libs]
    for lib, r in full_results:
        if not r or "error" in r:
            continue
        achieved = flops_sample * r["samples"] / r["best"] / 1e9
        pct = f" = {100 * achieved / gemm_rate:.0f}% of the GEMM rate" if gemm_rate else ""
        lines.append(
            f"- {LIB_NAMES[lib]} full batch: {r['best']:.3f} s → {achieved:.1f} GFLOP/s{pct}"
        )

    # Achieved GFLOP/s at every batch size (same FLOPs per sample at every batch size), and the
    # memory of the timed runs alone.
    lines += [
        "",
        "Achieved GFLOP/s (matmul FLOPs / time; % of the GEMM rate), and the peak MB of the timed "
        "runs alone (over the RSS after the warm-up, i.e. without one-off costs of first use):",
        "",
        "| batch size | "
        + " | ".join(f"{LIB_NAMES[lib]} GFLOP/s" for lib in libs)
        + " | timed-runs peak MB ("
        + " / ".join(LIB_NAMES[lib] for lib in libs)
        + ") |",
        "| --- |" + " ---: |" * (len(libs) + 1),
    ]
    for bs in batch_sizes:
        cells, mems = [], []
        for lib in libs:
            r = results.get((lib, bs))
            if not r or "error" in r:
                cells.append("—")
                mems.append("—")
                continue
            g = flops_sample * r["samples"] / r["best"] / 1e9
            pct = f" ({100 * g / gemm_rate:.0f}%)" if gemm_rate else ""
            cells.append(f"{g:.1f}{pct}")
            mems.append(f"{r['steady_peak_mib']:.0f}")
        lines.append(f"| {bs} | " + " | ".join(cells) + " | " + " / ".join(mems) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Time one training epoch of an MLP 784-256-10: descend vs PyTorch vs sklearn."
    )
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="samples per epoch (20,000)")
    parser.add_argument(
        "--batch-sizes", default=DEFAULT_BATCH_SIZES,
        help="comma-separated batch sizes, integers or 'full' (default 1,32,128,full)",
    )  # fmt: skip
    parser.add_argument(
        "--libs", default=",".join(LIBS), help="comma-separated subset of descend,torch,sklearn"
    )
    parser.add_argument(
        "--samples", default=None,
        help="per-batch-size sample counts, e.g. '1=2000,32=10000' (default 1=5000, others n); "
        "with --worker: the worker's sample count",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, best is kept (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gemm-size", type=int, default=2048, help="square GEMM size (2048)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report to PATH")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run: n=2,000, batch size 1 on 200 samples, 1 repeat, GEMM 512",
    )  # fmt: skip
    parser.add_argument("--worker", nargs=2, metavar=("LIB", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", action="store_true",
        help="with --worker: print a cProfile of one run (cumulative) instead of timing",
    )  # fmt: skip
    args = parser.parse_args(argv)

    if args.worker:
        lib, bs = args.worker
        if lib not in LIBS:
            parser.error(f"--worker LIB must be one of {', '.join(LIBS)}")
        samples = int(args.samples) if args.samples else args.n
        worker(lib, parse_batch(bs), samples, args.repeats, args.seed, args.profile)
        return 0

    if args.quick:
        args.n, args.repeats, args.gemm_size = 2_000, 1, 512
        if args.samples is None:
            args.samples = "1=200"
    batch_sizes = [parse_batch(b) for b in args.batch_sizes.split(",") if b.strip()]
    samples_map = dict(DEFAULT_SAMPLES)
    if args.samples:
        for item in args.samples.split(","):
            key, _, value = item.partition("=")
            if not value.strip().isdigit():
                parser.error(f"--samples expects BATCH=COUNT items, got {item!r}")
            samples_map[parse_batch(key)] = int(value)
    args.samples_map = samples_map
    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    unknown = sorted(set(libs) - set(LIBS))
    if unknown:
        parser.error(f"unknown --libs {unknown}; choose from {', '.join(LIBS)}")

    t_start = time.perf_counter()
    info = machine_info()
    notes = []
    busy = cpu_busy_fraction()
    if busy is not None:
        info["CPU busy before the run"] = f"{100 * busy:.0f}%"
        if busy > 0.15:
            notes.append(
                f"Warning: other processes kept the CPUs {100 * busy:.0f}% busy just before the "
                "run. They slow every library, and PyTorch's OpenMP threads badly at small batches "
                "(they wait for each other when one is descheduled); rerun on an idle machine for "
                "numbers to quote."
            )

    print("Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    modules = {"descend": "descend", "torch": "torch", "sklearn": "sklearn"}
    available = []
    for lib in libs:
        if lib == "descend" or importlib.util.find_spec(modules[lib]) is not None:
            available.append(lib)
        else:
            extra = "pip install 'descend[bench]'"
            notes.append(f"{LIB_NAMES[lib]} is not installed: skipped ({extra} to include it).")
    for note in notes:
        print(note, flush=True)

    results: dict = {}
    for bs in batch_sizes:
        for lib in available:
            samples = samples_for(bs, args)
            r = run_worker(lib, bs, samples, args)
            results[(lib, bs)] = r
            if "error" in r:
                msg = r["error"]
            else:
                msg = (
                    f"{r['samples'] / r['best']:>10,.0f} samples/s  best {r['best']:.3f} s  "
                    f"median {r['median']:.3f} s  {r['updates']} updates  "
                    f"peak +{r['peak_mib']:.0f} MB "
                    f"(timed runs alone +{r['steady_peak_mib']:.0f} MB)"
                    f"  loss {r['loss']:.4f}"
                )
            print(f"  {LIB_NAMES[lib]:>8} batch {bs:>5} ({samples:,} samples): {msg}", flush=True)

    # Threads as each library sees them at its defaults.
    torch_info = next(
        (r["info"] for (lib, _), r in results.items() if lib == "torch" and "info" in r), None
    )
    if torch_info:
        line = (
            f"torch threads: {torch_info['torch_threads']} intra-op, "
            f"{torch_info['torch_interop_threads']} inter-op"
        )
        print(line)
        info["torch threads"] = line.split(": ", 1)[1]

    gemm_rate = measure_gemm(args.gemm_size)
    model_gemm_s = measure_model_gemms(samples_for("full", args), args.seed)
    report = build_report(results, batch_sizes, available, args, gemm_rate, model_gemm_s)
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
    print("\n".join(report))
    print(f"\nTotal runtime: {total:.0f} s")

    if args.markdown:
        command = " ".join(
            ["python benchmarks/bench_mlp.py", *(sys.argv[1:] if argv is None else argv)]
        )
        header = [
            "# descend benchmark: MLP 784-256-10, one epoch",
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
