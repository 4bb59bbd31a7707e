"""A/B: descend's speed at two git revisions, measured side by side in the same run.

Each revision is checked out into a temporary ``git worktree``; the workers of ``bench_mlp.py``
(this directory's copy, so both sides are measured by the same code) run with that revision's
``src`` first on ``PYTHONPATH``. The cells (workload, batch size) run in rounds, A then B in
one round and B then A in the next, so that a change in the machine's load falls on both
sides alike. Each worker reports the best of its timed epochs; a side's rate is the best over
the rounds, and the ratio B/A is given with the range of the per-round ratios.

::

    python benchmarks/ab.py                               # main against HEAD
    python benchmarks/ab.py --a main --b HEAD --rounds 3 --workloads mlp,bce,residual
    python benchmarks/ab.py --b WORKTREE                  # against the uncommitted checkout
    python benchmarks/ab.py --markdown ab.md              # also write the table

The residual-block rows also run ``descend_eager`` (``fit(..., compile=False)``) and PyTorch on
side B, for the targets compiled >= 2x eager and >= PyTorch eager.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_mlp  # noqa: E402 - this directory's benchmark, for its workloads and workers

EXTRA_LIBS = {"residual": ("descend_eager", "torch")}  # side B only


def checkout(rev: str, root: Path, into: Path) -> Path:
    """The ``src`` directory of revision ``rev`` (``WORKTREE``: the checkout as it is)."""
    if rev == "WORKTREE":
        return root / "src"
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", "--force", str(into), rev],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return into / "src"


def remove(root: Path, path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(root), "worktree", "remove", "--force", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip


def run_cell(src: Path, wkey: str, lib: str, bs: str, samples: int, args) -> dict:
    """One worker of bench_mlp.py on the code in ``src``: its JSON result (or an error)."""
    env = dict(os.environ, PYTHONPATH=str(src) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        sys.executable, str(HERE / "bench_mlp.py"), "--worker", lib, bs, "--workload", wkey,
        "--samples", str(samples), "--repeats", str(args.repeats), "--seed", "0",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(bench_mlp.RESULT_TAG):
            return json.loads(line[len(bench_mlp.RESULT_TAG) :])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail}"}


def cells(args) -> list[tuple[str, str, int]]:
    """(workload, batch size, samples) for every cell asked for."""
    out = []
    for wkey in args.workloads.split(","):
        w = bench_mlp.WORKLOADS[wkey.strip()]
        batches = args.batch_sizes.split(",") if wkey == "mlp" and args.batch_sizes else None
        for bs in batches or w.batch_sizes:
            bs = bench_mlp.parse_batch(bs)
            n = w.quick_n if args.quick else w.n
            subset = w.quick_subset if args.quick else w.subset
            out.append((w.key, bs, min(subset.get(bs, n), n)))
    return out


def measure(srcs: dict[str, Path], args) -> dict:
    """Every cell on both sides, in alternating order, ``args.rounds`` times."""
    results: dict = {}
    for r in range(args.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for wkey, bs, samples in cells(args):
            runs = [(side, "descend") for side in order]
            runs += [("B", lib) for lib in EXTRA_LIBS.get(wkey, ())]
            for side, lib in runs:
                res = run_cell(srcs[side], wkey, lib, bs, samples, args)
                results.setdefault((wkey, bs, side, lib), []).append(res)
                shown = f"{bench_mlp.rate(res):,.0f} samples/s" if "error" not in res else res
                print(f"round {r + 1} {wkey} batch {bs} {side} {lib}: {shown}", flush=True)
    return results


def _rates(runs: list[dict]) -> list[float]:
    return [bench_mlp.rate(r) for r in runs if "error" not in r]


def table(results: dict, args) -> list[str]:
    lines = [
        f"A = `{args.a}`, B = `{args.b}`; {args.rounds} rounds alternating A and B, each worker "
        f"the best of {args.repeats} epochs; rate = best over the rounds (samples/s).",
        "",
        "| workload | batch size | A | B | B/A | B/A per round (min-max) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for wkey, bs, _ in cells(args):
        a = _rates(results.get((wkey, bs, "A", "descend"), []))
        b = _rates(results.get((wkey, bs, "B", "descend"), []))
        if not a or not b:
            lines.append(f"| {wkey} | {bs} | {max(a, default=0):,.0f} | {max(b, default=0):,.0f} "
                         "| — | — |")  # fmt: skip
            continue
        per_round = [y / x for x, y in zip(a, b, strict=False)]
        lines.append(
            f"| {bench_mlp.WORKLOADS[wkey].title} | {bs} | {max(a):,.0f} | {max(b):,.0f} | "
            f"{max(b) / max(a):.2f}× | {min(per_round):.2f}-{max(per_round):.2f} |"
        )
    lines += extra_table(results, args)
    return lines


def extra_table(results: dict, args) -> list[str]:
    """Side B's compiled rate against its own eager step and PyTorch (the residual rows)."""
    lines = []
    for wkey, bs, _ in cells(args):
        for lib in EXTRA_LIBS.get(wkey, ()):
            mine = _rates(results.get((wkey, bs, "B", "descend"), []))
            other = _rates(results.get((wkey, bs, "B", lib), []))
            if mine and other:
                if not lines:
                    lines += [
                        "",
                        "| workload | batch size | B descend | peer | peer rate | descend/peer |",
                        "| --- | --- | ---: | --- | ---: | ---: |",
                    ]
                lines.append(
                    f"| {bench_mlp.WORKLOADS[wkey].title} | {bs} | {max(mine):,.0f} | "
                    f"{bench_mlp.LIB_NAMES[lib]} | {max(other):,.0f} | "
                    f"{max(mine) / max(other):.2f}× |"
                )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default="main", help="revision A (default main)")
    parser.add_argument("--b", default="HEAD", help="revision B (default HEAD; WORKTREE: as is)")
    parser.add_argument("--workloads", default="mlp,bce,deep,predict,residual")
    parser.add_argument("--batch-sizes", default=None, help="MLP 784-256-10 only (1,32,128,full)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per worker (best)")
    parser.add_argument("--quick", action="store_true", help="the workloads' small epochs")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to PATH")
    args = parser.parse_args(argv)
    root = Path(
        subprocess.run(["git", "-C", str(HERE), "rev-parse", "--show-toplevel"],
                       check=True, capture_output=True, text=True).stdout.strip()
    )  # fmt: skip
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="descend-ab-") as tmp:
        made = []
        try:
            srcs = {}
            for side, rev in (("A", args.a), ("B", args.b)):
                srcs[side] = checkout(rev, root, Path(tmp) / side)
                if rev != "WORKTREE":
                    made.append(Path(tmp) / side)
            results = measure(srcs, args)
        finally:
            for path in made:
                remove(root, path)
    lines = table(results, args)
    if load is not None:
        end = os.getloadavg()
        lines += ["", f"Load average (1 min) at the start {load[0]:.2f}, at the end {end[0]:.2f}: "
                  "other processes slow both sides; the alternation shares that out."]  # fmt: skip
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
