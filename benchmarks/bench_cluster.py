"""What Ray costs descend, measured on this machine, and a model of step time for 1-64 machines.

Three measurements, then the model (printed as a Markdown section for benchmarks/RESULTS.md):

1. **Per-step overhead** of data-parallel training: one update's wall time on Ray minus the
   computation itself, for networks of 1k to 1M parameters and 1 and 2 workers (a batch of two
   rows per worker, so that the computation is negligible), through Ray's Compiled Graph (what
   a run uses after its first 20 updates) and through plain actor calls.
2. **Full-batch gradient descent on 2,000,000 x 100** memory-mapped float32 rows (network
   100-64-1, mean squared error): seconds per epoch (= per update) of plain ``ds.fit`` and of
   ``ds.fit(cluster=...)`` with 1 and 2 workers, each worker opening its own shard file.
3. **A sweep of 40 short runs** (``ds.experiments.grid_sweep``), serially and as Ray tasks on 2
   workers.

The model: a step on ``m`` machines takes ``B * k / m + o(P, m) + net(P, m)``: the computation
(``k`` seconds per row for the network, measured here) shrinks with the rows per worker; the
overhead ``o`` (fitted to measurement 1: ``a + b*m + c*P*m``) and the network time ``net`` (the
driver sends the ``P`` parameters to each worker and receives ``P`` gradients back, 8P bytes
per worker in float32, over one link of an *assumed* bandwidth) grow with the parameters and the
workers. Adding machines pays when ``T(B, m) < B * k``, i.e. from
``B* = (o + net) / (k * (1 - 1/m))`` rows per batch.

Usage (times measured on this 2-core machine at load averages 6 to 8)::

    python benchmarks/bench_cluster.py --data /tmp/descend-cluster-data   # all: about 2 minutes
    python benchmarks/bench_cluster.py --quick                             # 200,000 rows
    python benchmarks/bench_cluster.py --only overhead                     # 40-60 s
    python benchmarks/bench_cluster.py --only sweep                        # 20-30 s
    python benchmarks/bench_cluster.py --only overhead,sweep --markdown out.md

The full-batch section takes 30-50 s (writing its 1.6 GB of data the first time adds about
20 s). Every section prints its own time; Ray starts once before them (5-10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import descend as ds
from descend.cluster.worker import ShardWorker
from descend.compile.backend.blas import blas_threads

BANDWIDTH = 1.25e9  # bytes/s: an assumed 10 Gbit/s link to the driver (not measured here)


def _mlp_with(params: int) -> tuple[list[int], int]:
    """Sizes 100-h-1 with about ``params`` parameters (102 h + 1)."""
    h = max(1, round((params - 1) / 102))
    return [100, h, 1], 102 * h + 1


def overhead(
    targets=(1_000, 10_000, 100_000, 200_000, 1_000_000),
    workers=(1, 2),
    steps=50,
    paths=("graph", "calls"),
):
    """Per-step wall time on Ray minus the computation, in ms, through the compiled graph and
    through plain actor calls."""
    rng = np.random.default_rng(0)
    X = rng.random((256, 100), dtype=np.float32)
    y = rng.random(256, dtype=np.float32)
    rows_out = []
    for target in targets:
        sizes, n_params = _mlp_with(target)
        model = ds.nn.mlp(sizes, "relu", seed=0)
        local = ShardWorker(model, ds.losses.mse, {}, X[:2], y[:2])
        weights = local.weights()
        compute = []
        with blas_threads(1):  # as on a Ray worker (one CPU: one BLAS thread)
            for _ in range(5):  # traced, warm
                local.sums(weights, None)
            for _ in range(steps):
                t = time.perf_counter()
                local.sums(weights, None)
                compute.append(time.perf_counter() - t)
        for w in workers:
            rows = np.arange(2 * w) * (len(X) // (2 * w))  # two rows in each worker's shard
            for path in paths:
                cluster = ds.cluster.Ray(workers=w, compiled_graph=path == "graph")
                dp = cluster.data_parallel(model, ds.losses.mse, X, y)
                try:
                    for _ in range(5):
                        dp.gradients(rows)
                    assert dp.graph == (path == "graph")
                    times = []
                    for _ in range(steps):
                        t = time.perf_counter()
                        dp.gradients(rows)
                        times.append(time.perf_counter() - t)
                finally:
                    dp.close()
                step, comp = statistics.median(times), statistics.median(compute)
                # The fastest update is the best estimate of the cost on an idle machine: the
                # machine is shared, and other processes only ever add time.
                fastest = min(times) - min(compute)
                rows_out.append({"params": n_params, "workers": w, "path": path,
                                 "step_ms": step * 1e3, "compute_ms": comp * 1e3,
                                 "overhead_ms": (step - comp) * 1e3,
                                 "fastest_overhead_ms": fastest * 1e3})  # fmt: skip
                print(f"overhead: {n_params:>9,} parameters, {w} worker(s), {path}: step "
                      f"{step * 1e3:.2f} ms, compute {comp * 1e3:.2f} ms, overhead "
                      f"{(step - comp) * 1e3:.2f} ms (fastest {fastest * 1e3:.2f})",
                      flush=True)  # fmt: skip
    return rows_out


def _write_rows(path: Path, rows: int, seed: int, start: int = 0, chunk: int = 50_000) -> None:
    """Rows ``start .. start + rows`` of the data set (float32, uniform in [0, 1)), in chunks;
    the same values whichever file they go into (one generator per chunk of the whole)."""
    with open(path, "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                  "fortran_order": False, "shape": (rows, 100)}  # fmt: skip
        np.lib.format.write_array_header_1_0(f, header)
        for first in range(start, start + rows, chunk):
            block = np.random.default_rng([seed, first // chunk]).random((chunk, 100), np.float32)
            block[: min(chunk, start + rows - first)].tofile(f)


def make_data(folder: Path, rows: int) -> None:
    """X.npy (rows x 100) and y.npy, and the two halves X0/X1, y0/y1 (once; kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()).get("rows") == rows:
        return
    half = rows // 2
    _write_rows(folder / "X.npy", rows, 0)
    _write_rows(folder / "X0.npy", half, 0)
    _write_rows(folder / "X1.npy", rows - half, 0, start=half)
    w = np.random.default_rng(1).normal(size=100).astype(np.float32)
    X = np.load(folder / "X.npy", mmap_mode="r")
    y = np.concatenate([X[i : i + 100_000] @ w for i in range(0, rows, 100_000)])
    np.save(folder / "y.npy", y)
    np.save(folder / "y0.npy", y[:half])
    np.save(folder / "y1.npy", y[half:])
    done.write_text(json.dumps({"rows": rows}))


def full_batch(folder: Path, epochs: int = 2):
    """Seconds per full-batch epoch: plain fit, and on Ray with 1 and 2 workers."""
    X = np.load(folder / "X.npy", mmap_mode="r")
    y = np.load(folder / "y.npy", mmap_mode="r")
    kwargs = dict(loss="mse", optimizer=ds.optim.GD(0.05), batch_size="full", epochs=epochs,
                  progress=False)  # fmt: skip
    out, models = [], {}
    runs = [("plain ds.fit", None, X, y),
            ("Ray, 1 worker", 1, [folder / "X.npy"], [folder / "y.npy"]),
            ("Ray, 2 workers", 2, [folder / "X0.npy", folder / "X1.npy"],
             [folder / "y0.npy", folder / "y1.npy"])]  # fmt: skip
    for name, workers, Xs, ys in runs:
        model = ds.nn.mlp([100, 64, 1], "relu", seed=0)
        cluster = None if workers is None else ds.cluster.Ray(workers=workers)
        t = time.perf_counter()
        history = ds.fit(model, Xs, ys, cluster=cluster, **kwargs)
        total = time.perf_counter() - t
        per_epoch = statistics.median(history.epoch["time"])
        models[name] = model
        out.append({"run": name, "s_per_epoch": per_epoch, "total_s": total,
                    "final_loss": history.epoch["loss"][-1]})  # fmt: skip
        print(f"full batch {len(X):,} x 100: {name}: {per_epoch:.2f} s/epoch, total {total:.1f} s "
              f"(with start-up), loss {history.epoch['loss'][-1]:.6g}", flush=True)  # fmt: skip
    ref = models["plain ds.fit"]
    for row in out:
        row["max_rel_diff"] = max(
            float(np.abs(p.data - q.data).max() / np.abs(p.data).max())
            for p, q in zip(ref.parameters(), models[row["run"]].parameters(), strict=True)
        )
    return out


def sweep(workers: int = 2, rounds: int = 3):
    """A grid of 40 short runs, serially and on Ray (the faster of ``rounds`` each)."""
    X, y = ds.datasets.moons(2000, seed=0)
    model = ds.nn.mlp([2, 32, 32, 2], output_activation="softmax", seed=0)
    kwargs = dict(loss="categorical_cross_entropy", lrs=[0.01, 0.03, 0.1, 0.3, 1.0],
                  batch_sizes=[32, 128], optimizers=["gd", "adam"], seeds=[0, 1],
                  epochs=8)  # fmt: skip
    cluster = ds.cluster.Ray(workers=workers)
    cluster.connect()
    ds.experiments.grid_sweep(
        model, X, y, **{**kwargs, "lrs": [0.1], "optimizers": ["gd"]}, cluster=cluster
    )  # fmt: skip  (warm up the Ray workers)
    # Alternating rounds, the fastest of each: the machine is shared, and other processes
    # only ever add time.
    t_serial, t_ray = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        serial = ds.experiments.grid_sweep(model, X, y, **kwargs)
        t_serial.append(time.perf_counter() - t)
        t = time.perf_counter()
        spread = ds.experiments.grid_sweep(model, X, y, cluster=cluster, **kwargs)
        t_ray.append(time.perf_counter() - t)
        print(f"sweep round: serial {t_serial[-1]:.2f} s, Ray {t_ray[-1]:.2f} s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    t_serial, t_ray = min(t_serial), min(t_ray)
    same = all(
        all(np.array_equal(a[k], b[k]) for k in a)
        for a, b in zip(serial.states, spread.states, strict=True)
    )
    print(f"sweep of {len(serial.rows)} runs: serial {t_serial:.1f} s, Ray {workers} workers "
          f"{t_ray:.1f} s ({t_serial / t_ray:.2f}x), bit-identical: {same}",
          flush=True)  # fmt: skip
    return {"runs": len(serial.rows), "serial_s": t_serial, "ray_s": t_ray,
            "speedup": t_serial / t_ray, "identical": same, "rounds": rounds}  # fmt: skip


def per_row_seconds(sizes, loss, batch=4096, repeats=5) -> float:
    """A worker's time per row for a network (its compiled step's sums over 4,096 rows)."""
    rng = np.random.default_rng(0)
    X = rng.random((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch) if sizes[-1] > 1 else rng.random(batch, np.float32)
    out = "softmax" if sizes[-1] > 1 else None
    worker = ShardWorker(ds.nn.mlp(sizes, "relu", out, seed=0), loss, {}, X, y)
    weights = worker.weights()
    times = []
    with blas_threads(1):  # as on a Ray worker (one CPU: one BLAS thread)
        worker.sums(weights, None)
        for _ in range(repeats):
            t = time.perf_counter()
            worker.sums(weights, None)
            times.append(time.perf_counter() - t)
    return statistics.median(times) / batch


def fit_overhead(rows) -> tuple[float, float, float]:
    """Non-negative least squares ``overhead_s = a + b*m + c*P*m`` over the fastest overheads
    of the measured grid through the compiled graph (a cost cannot be negative)."""
    from scipy.optimize import nnls

    rows = [r for r in rows if r["path"] == "graph"] or rows
    A = np.array([[1.0, r["workers"], r["params"] * r["workers"]] for r in rows])
    t = np.array([max(r["fastest_overhead_ms"], 0.0) / 1e3 for r in rows])
    scale = A.max(axis=0)  # columns of similar size for the solver
    coef, _ = nnls(A / scale, t)
    a, b, c = coef / scale
    return float(a), float(b), float(c)


def _cost(coef, P: int, m: int) -> float:
    """The fixed cost of one update on m machines: overhead plus modelled network time."""
    a, b, c = coef
    return a + b * m + c * P * m + m * 8 * P / BANDWIDTH


def _load_caveat(load_before: float) -> str:
    if load_before < 0.5:
        return "The machine was otherwise idle."
    return (
        "Other work was running on the machine: the timings are distorted upwards, and by "
        "different amounts from one line to the next."
    )


def model_section(over, fb, sw, coef, nets, load_before: float) -> str:
    a, b, c = coef
    lines = ["## Beyond one machine: descend on Ray (benchmarks/bench_cluster.py)", ""]
    lines.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this 2-core "
                 f"machine; load average before the run {load_before:.1f} (1 minute), at its end "
                 f"{os.getloadavg()[0]:.1f} (the benchmark's own processes count in it). "
                 f"{_load_caveat(load_before)}")  # fmt: skip
    lines += ["", "**Per-step overhead** (one update on Ray minus its computation; 2 rows per "
              "worker; medians of 50 updates, and the fastest update's overhead; *graph*: Ray's "
              "Compiled Graph, what a run uses from its 21st update; *calls*: plain actor calls "
              "and the object store):", "",
              "| parameters | workers | path | step (ms) | computation (ms) | overhead (ms) | "
              "fastest overhead (ms) |",
              "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in over:
        lines.append(f"| {r['params']:,} | {r['workers']} | {r['path']} | {r['step_ms']:.2f} | "
                     f"{r['compute_ms']:.2f} | {r['overhead_ms']:.2f} | "
                     f"{r['fastest_overhead_ms']:.2f} |")  # fmt: skip
    if fb:
        lines += ["", f"**Full-batch gradient descent** on {fb['rows']:,} x 100 memory-mapped "
                  "float32 rows, network 100-64-1, mean squared error, plain GD:", "",
                  "| run | s per epoch | total s (with start-up) | max relative weight "
                  "difference to plain fit |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
        for r in fb["runs"]:
            lines.append(f"| {r['run']} | {r['s_per_epoch']:.2f} | {r['total_s']:.1f} | "
                         f"{r['max_rel_diff']:.1e} |")  # fmt: skip
    if sw:
        lines += ["", f"**A sweep of {sw['runs']} short runs** (grid_sweep, moons 2,000 x 2, MLP "
                  f"2-32-32-2, 8 epochs each): serially {sw['serial_s']:.1f} s, on Ray with 2 "
                  f"workers {sw['ray_s']:.1f} s (the fastest of {sw['rounds']} alternating "
                  "rounds each): "
                  f"**{sw['speedup']:.2f}x** (target 1.7x); every "
                  f"run bit-identical to its serial twin: {sw['identical']}."]  # fmt: skip
    lines += ["", "### A model of step time for 1 to 64 machines", "",
              f"Fitted (non-negative least squares) to the fastest overheads through the "
              f"compiled graph: "
              f"o(P, m) = {a * 1e3:.2f} ms + {b * 1e3:.2f} ms x m "
              f"+ {c * 1e9:.3f} ns x P x m. Communication between machines is not measured here "
              f"(one machine); it is modelled as 8P bytes per worker (float32 parameters out, "
              f"gradients back) through the driver's link at an assumed "
              f"{BANDWIDTH * 8 / 1e9:.0f} Gbit/s. The computation per row, k, is a worker's "
              "compiled step (its sums over 4,096 rows, one BLAS thread) measured on this "
              "machine, divided evenly by the rows per worker.", ""]  # fmt: skip
    machines = [1, 2, 4, 8, 16, 32, 64]
    for name, P, k in nets:
        lines += [f"**{name}** ({P:,} parameters, k = {k * 1e6:.2f} µs per row):", "",
                  "| batch | " + " | ".join(f"m={m}" for m in machines) + " |",
                  "| ---: |" + " ---: |" * len(machines)]  # fmt: skip
        for batch in (256, 4096, 65536, 1_048_576):
            cells = []
            for m in machines:
                t = batch * k if m == 1 else batch * k / m + _cost(coef, P, m)
                cells.append(f"{t * 1e3:.3g} ms")
            lines.append(f"| {batch:,} | " + " | ".join(cells) + " |")
        pays = [f"m={m}: {_cost(coef, P, m) / (k * (1 - 1 / m)):,.0f}" for m in machines[1:]]
        lines += ["", "Smallest batch (rows) for which m machines beat one: " + "; ".join(pays)
                  + ".", ""]  # fmt: skip
    lines += ["Stochastic gradient descent (batch 1) never pays: its computation is "
              "microseconds, the overhead of one round trip milliseconds.", ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=str(Path(tempfile.gettempdir()) / "descend-cluster"),
        help="folder for the memory-mapped data (written once, kept)",
    )
    parser.add_argument("--quick", action="store_true", help="200,000 rows instead of 2,000,000")
    parser.add_argument("--only", default="", help="comma-separated sections to run: "
                        "overhead,full,sweep (default: all)")  # fmt: skip
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--markdown", help="write the section to this file")
    args = parser.parse_args()
    sections = {"overhead", "full", "sweep"}
    wanted = set(filter(None, args.only.split(","))) or sections
    wanted -= set(args.skip.split(","))
    if not wanted <= sections:
        parser.error(f"--only/--skip name sections of {sorted(sections)}, got {sorted(wanted)}")
    import ray

    load_before = os.getloadavg()[0]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    over, fb, sw = [], None, None
    if "overhead" in wanted:
        t = time.perf_counter()
        over = overhead()
        print(f"(overhead section: {time.perf_counter() - t:.0f} s)", flush=True)
    if "full" in wanted:
        t = time.perf_counter()
        rows = 200_000 if args.quick else 2_000_000
        make_data(Path(args.data), rows)
        fb = {"rows": rows, "runs": full_batch(Path(args.data))}
        print(f"(full-batch section: {time.perf_counter() - t:.0f} s)", flush=True)
    if "sweep" in wanted:
        t = time.perf_counter()
        sw = sweep()
        print(f"(sweep section: {time.perf_counter() - t:.0f} s)", flush=True)
    nets = [("MLP 784-256-10", 784 * 256 + 256 + 256 * 10 + 10,
             per_row_seconds([784, 256, 10], ds.losses.categorical_cross_entropy)),
            ("MLP 100-64-1", 100 * 64 + 64 + 64 + 1,
             per_row_seconds([100, 64, 1], ds.losses.mse))]  # fmt: skip
    coef = fit_overhead(over) if over else (0.0, 0.0, 0.0)
    text = model_section(over, fb, sw, coef, nets, load_before)
    print()
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
