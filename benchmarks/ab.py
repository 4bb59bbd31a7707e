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
    python benchmarks/ab.py --a 34741be --b WORKTREE --workloads mlp,deep,predict,ooc \
        --batch-sizes 128,full --rounds 4

By default every row of ``RESULTS.md`` is measured (MLP 784-256-10 at batch size 1, 32, 128
and full; the 30-16-1 net at 1 and 32; the deep MLP at 128; prediction in chunks of 1,024; the
out-of-core epoch over a memory-mapped file, written once for both sides; the residual block
at 32). Side B also runs the peers of the speed targets that the code before the compiled step
met (``--peers met``: JAX ``jit`` at batch size 1 and 32, PyTorch at 128 and for the 30-16-1 net
at 1; the residual block's own eager step and PyTorch), right after its own run in each round;
``--peers all`` adds every other speed target's peer, ``--peers none`` runs none.
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

# Peers run on side B, for the speed targets (bench_mlp.SPECIFIC_TARGETS): "met" runs those that
# the code before the compiled step (34741be) met, and the residual block's new ones.
MET_BEFORE = {
    ("mlp", "1", "jax"), ("mlp", "32", "jax"), ("mlp", "128", "torch"), ("bce", "1", "torch"),
    ("residual", "32", "descend_eager"), ("residual", "32", "torch"),
}  # fmt: skip


def peers_for(wkey: str, bs: str, which: str) -> list[tuple[str, float]]:
    """(peer library, threshold) of the speed targets of a cell: ``which`` is "met", "all" or
    "none"."""
    if which == "none":
        return []
    found = []
    for twk, tbs, kind, peer, threshold in bench_mlp.SPECIFIC_TARGETS:
        if (twk, tbs, kind) == (wkey, bs, "speed"):
            if which == "all" or (wkey, bs, peer) in MET_BEFORE:
                found.append((peer, threshold))
    return found


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
    if wkey == "ooc":
        cmd += ["--data", str(args.ooc_dir)]
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
            if wkey == "ooc" and args.ooc_rows:
                n = args.ooc_rows
            subset = w.quick_subset if args.quick else w.subset
            out.append((w.key, bs, min(subset.get(bs, n), n)))
    return out


def measure(srcs: dict[str, Path], args) -> dict:
    """Every cell on both sides, in alternating order, ``args.rounds`` times (the peers of a
    cell after its B run). ``results["load"]`` is the load average before each round."""
    results: dict = {"load": []}
    for r in range(args.rounds):
        results["load"].append(os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for wkey, bs, samples in cells(args):
            runs = [(side, "descend") for side in order]
            runs[order.index("B") + 1 : order.index("B") + 1] = [
                ("B", lib) for lib, _ in peers_for(wkey, bs, args.peers)
            ]
            for side, lib in runs:
                res = run_cell(srcs[side], wkey, lib, bs, samples, args)
                results.setdefault((wkey, bs, side, lib), []).append(res)
                shown = f"{bench_mlp.rate(res):,.0f} samples/s" if "error" not in res else res
                print(f"round {r + 1} {wkey} batch {bs} {side} {lib}: {shown}", flush=True)
    return results


def _rates(runs: list[dict]) -> list[float | None]:
    """Per round, the rate (None where the worker failed)."""
    return [None if "error" in r else bench_mlp.rate(r) for r in runs]


def _ratios(mine: list, other: list) -> str:
    """The best-over-rounds ratio, the median and the range of the per-round ratios."""
    pairs = [x / y for x, y in zip(mine, other, strict=False) if x and y]
    best_mine = max((x for x in mine if x), default=0.0)
    best_other = max((y for y in other if y), default=0.0)
    if not pairs or not best_other:
        return "— | — | —"
    pairs.sort()
    mid = len(pairs) // 2
    median = pairs[mid] if len(pairs) % 2 else (pairs[mid - 1] + pairs[mid]) / 2
    return f"{best_mine / best_other:.2f}× | {median:.2f}× | {min(pairs):.2f}-{max(pairs):.2f}"


def _cell_title(wkey: str, bs: str, samples: int) -> str:
    label = f"full ({samples:,})" if bs == "full" else bs
    return f"| {bench_mlp.WORKLOADS[wkey].title} | {label} |"


def table(results: dict, args) -> list[str]:
    lines = [
        f"A = `{args.a}`, B = `{args.b}`; {args.rounds} rounds alternating A and B (A first in "
        f"odd rounds), each worker the best of {args.repeats} epochs (prediction best of "
        f"{max(args.repeats, bench_mlp.WORKLOADS['predict'].min_repeats)}, the 30-16-1 net of "
        f"{max(args.repeats, bench_mlp.WORKLOADS['bce'].min_repeats)}, the residual block of "
        f"{max(args.repeats, bench_mlp.WORKLOADS['residual'].min_repeats)}, out-of-core one "
        "epoch); "
        "rate = best over the rounds (samples/s). B/A: the best rates' ratio, then the median "
        "and the range of the per-round ratios.",
        "",
        "| workload | batch size | A | B | B/A | median | per round (min-max) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for wkey, bs, samples in cells(args):
        a = _rates(results.get((wkey, bs, "A", "descend"), []))
        b = _rates(results.get((wkey, bs, "B", "descend"), []))
        best_a = max((x for x in a if x), default=0.0)
        best_b = max((x for x in b if x), default=0.0)
        lines.append(
            f"{_cell_title(wkey, bs, samples)} {best_a:,.0f} | {best_b:,.0f} | {_ratios(b, a)} |"
        )
    lines += _ooc_lines(results, args)
    lines += peer_table(results, args)
    return lines


def _ooc_lines(results: dict, args) -> list[str]:
    lines = []
    for wkey, bs, _ in cells(args):
        if wkey != "ooc":
            continue
        for side in ("A", "B"):
            runs = [r for r in results.get((wkey, bs, side, "descend"), []) if "error" not in r]
            if runs:
                peak = max(r["peak_mib"] for r in runs)
                verdict = "PASS" if peak < bench_mlp.OOC_LIMIT_MB else "MISS"
                lines.append(
                    f"Out-of-core, side {side}: peak {peak:.0f} MB above the process's start "
                    f"(the largest over the rounds; target < {bench_mlp.OOC_LIMIT_MB} MB: "
                    f"{verdict})."
                )
    return ["", *lines] if lines else []


def peer_table(results: dict, args) -> list[str]:
    """Side B's rate against the peers of its speed targets, per round, and the peak memory."""
    lines = []
    for wkey, bs, samples in cells(args):
        for lib, threshold in peers_for(wkey, bs, args.peers):
            mine_runs = results.get((wkey, bs, "B", "descend"), [])
            other_runs = results.get((wkey, bs, "B", lib), [])
            mine, other = _rates(mine_runs), _rates(other_runs)
            if not any(mine) or not any(other):
                continue
            best = max(x for x in mine if x) / max(y for y in other if y)
            verdict = "PASS" if best >= threshold else "MISS"
            peak_mine = max((r["peak_mib"] for r in mine_runs if "error" not in r), default=0)
            peak_other = max((r["peak_mib"] for r in other_runs if "error" not in r), default=0)
            lines.append(
                f"{_cell_title(wkey, bs, samples)} {max(x for x in mine if x):,.0f} | "
                f"{bench_mlp.LIB_NAMES[lib]} | {max(y for y in other if y):,.0f} | "
                f"{_ratios(mine, other)} | ≥ {threshold}× | {verdict} | "
                f"{peak_mine:.0f} / {peak_other:.0f} |"
            )
    if not lines:
        return []
    return [
        "",
        "Side B against the peers of the speed targets (each run right after B's, in every "
        "round); peak MB: the largest over the rounds.",
        "",
        "| workload | batch size | B descend | peer | peer rate | descend/peer | median | "
        "per round (min-max) | target | result | peak MB (descend / peer) |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
        *lines,
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default="main", help="revision A (default main)")
    parser.add_argument("--b", default="HEAD", help="revision B (default HEAD; WORKTREE: as is)")
    parser.add_argument(
        "--workloads", default="mlp,bce,deep,predict,ooc,residual",
        help="of bench_mlp.py (default: every row of RESULTS.md)",
    )  # fmt: skip
    parser.add_argument("--batch-sizes", default=None, help="MLP 784-256-10 only (1,32,128,full)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per worker (best)")
    parser.add_argument(
        "--peers", choices=("met", "all", "none"), default="met",
        help="peers run on side B: the speed targets met before (default), all, or none",
    )  # fmt: skip
    parser.add_argument("--ooc-rows", type=int, default=None, help="rows of the out-of-core file")
    parser.add_argument("--quick", action="store_true", help="the workloads' small epochs")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to PATH")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.workloads.split(",")) - set(bench_mlp.WORKLOADS))
    if unknown:
        parser.error(f"unknown --workloads {unknown}; choose from {bench_mlp.DEFAULT_WORKLOADS}")
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
            args.ooc_dir = Path(tmp) / "ooc"
            for wkey, _, rows in cells(args):
                if wkey == "ooc":  # one file for both sides and every round
                    args.ooc_dir.mkdir()
                    bench_mlp.write_ooc_data(args.ooc_dir, rows, seed=0)
            results = measure(srcs, args)
        finally:
            for path in made:
                remove(root, path)
    lines = table(results, args)
    if load is not None:
        end = os.getloadavg()
        rounds = ", ".join(f"{x:.2f}" for x in results["load"])
        lines += ["", f"Load average (1 min) at the start {load[0]:.2f}, at the start of each "
                  f"round {rounds}, at the end {end[0]:.2f}: other processes slow both sides; "
                  "the alternation shares that out."]  # fmt: skip
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
