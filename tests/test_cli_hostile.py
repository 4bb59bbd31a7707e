"""The command line under attack: hostile run-folder files, hostile data, hostile arguments.

Every case ends in exit status 1 or 2 with one line on stderr that names the file or the
argument: no traceback, no "internal error", no NumPy warning, no file outside the run folder
changed, the earlier run intact. The sweep runs every command that reads a run folder on every
hostile variant of its files, in a child process whose address space is limited (and whose
peak memory is measured), so that a file that makes descend allocate gigabytes fails the test
instead of the machine. The counts are printed at the end (``-s``): tried, clean, bad.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.cli import main

resource = pytest.importorskip("resource")  # address-space limits: POSIX
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="FIFOs, /dev/zero, /proc and RLIMIT_AS"
)

COUNTS = {"tried": 0, "clean": 0, "bad": 0}


# ----------------------------------------------------------------------------------- helpers


def run_cli(argv: list[str]) -> tuple[int, str, list[str]]:
    """``descend ARGV`` in this process: (exit status, stderr, NumPy/Python warnings)."""
    err, out = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
    ):
        warnings.simplefilter("always")
        code = main([str(a) for a in argv])
    return code, err.getvalue(), [str(w.message) for w in caught]


def problems(code: int, stderr: str, caught: list[str], names: tuple[str, ...]) -> list[str]:
    """What is wrong with a refusal (empty when it is clean)."""
    found = []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code not in (1, 2):
        found.append(f"exit status {code}")
    if len(lines) != 1:
        found.append(f"{len(lines)} lines on stderr")
    if "Traceback" in stderr or "internal error" in stderr:
        found.append("a traceback or an internal error")
    if "Warning" in stderr or caught:
        found.append(f"warnings {caught}")
    if names and not any(name in stderr for name in names):
        found.append(f"the message names none of {names}")
    return found


def assert_refused(argv: list[str], *names: str, code: int | None = None) -> str:
    """Run ``descend ARGV`` and assert a clean refusal that names one of ``names``."""
    with limited_memory():
        status, stderr, caught = run_cli(argv)
    found = problems(status, stderr, caught, names)
    if code is not None and status != code:
        found.append(f"exit status {status}, expected {code}")
    COUNTS["tried"] += 1
    COUNTS["clean" if not found else "bad"] += 1
    assert not found, f"descend {' '.join(map(str, argv))}: {found}: {stderr!r}"
    return stderr


@contextlib.contextmanager
def limited_memory(extra: int = 2 << 30):
    """At most ``extra`` more bytes of address space for this process, inside the block: a
    hostile file that makes descend allocate gigabytes fails with MemoryError, not the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = used + extra if hard == resource.RLIM_INFINITY else min(used + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def npy_with_shape(shape: tuple[int, ...], dtype=np.float64, data: bytes = b"") -> bytes:
    """A .npy header announcing ``shape`` followed by ``data`` (usually far fewer bytes)."""
    buffer = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    return buffer.getvalue()


def npz_of(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_model_json(depth: int) -> bytes:
    """model.json of Sequentials nested ``depth`` deep around one activation."""
    node: dict = {"class": "Activation", "activation": "relu"}
    for _ in range(depth):
        node = {"class": "Sequential", "layers": [node]}
    config = {"format": "descend-model", "version": 1, "architecture": node, "parameters": {}}
    return json.dumps(config).encode()


def train(tmp: Path, name: str, data: str = "moons:120", *extra: str) -> Path:
    out = tmp / name
    code, stderr, _ = run_cli(
        ["train", data, "--epochs", "2", "--no-figures", "--quiet", "--seed", "0", "--out", out,
         *extra]
    )  # fmt: skip
    assert code == 0, stderr
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A small trained run (with its trajectory), copied for each case."""
    return train(tmp_path_factory.mktemp("template"), "run")


@pytest.fixture
def run_copy(template, tmp_path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(template, folder)
    return folder


def edit_json(path: Path, **changes) -> None:
    content = json.loads(path.read_text())
    content.update(changes)
    path.write_text(json.dumps(content))


# ------------------------------------------------ 5. every file descend reads, like the model


def test_trajectory_zip_bomb_and_huge_member_are_refused_before_allocating(run_copy):
    traj = run_copy / "trajectory.npz"
    # 64 MB of zeros deflate to 64 kB; np.load would inflate them all.
    traj.write_bytes(zip_of({"snapshots.npy": npy_with_shape((1 << 23,), data=bytes(64 << 20))},
                            zipfile.ZIP_DEFLATED))  # fmt: skip
    assert traj.stat().st_size < 1 << 20
    assert "compressed" in assert_refused(["landscape", run_copy, "--resolution", 3],
                                          "trajectory.npz")  # fmt: skip
    # A stored member whose header claims 100 GB (np.load: MemoryError).
    traj.write_bytes(zip_of({"snapshots.npy": npy_with_shape((100_000_000, 125), data=b"\0" * 80)}))
    assert "announces" in assert_refused(["landscape", run_copy], "trajectory.npz")


def test_trajectory_garbage_missing_key_and_pickles_are_refused(run_copy):
    traj = run_copy / "trajectory.npz"
    for content in (b"garbage" * 20, npz_of(other=np.zeros(3)),
                    npz_of(snapshots=np.array([{"a": 1}], dtype=object))):  # fmt: skip
        traj.write_bytes(content)
        stderr = assert_refused(["landscape", run_copy], "trajectory.npz")
        assert "pickled" not in stderr


def test_preprocess_json_empty_nested_huge_and_inconsistent_are_refused(run_copy):
    info_path = run_copy / "preprocess.json"
    good = info_path.read_bytes()
    for content in (b"{}", deep_json(100_000), b"[1, 2]", b"\xff\xfe"):
        info_path.write_bytes(content)
        assert_refused(["evaluate", run_copy, "moons:40"], "preprocess.json")
    with open(info_path, "wb") as f:  # 200 MB, sparse: never read
        f.write(b"{")
        f.truncate(200 << 20)
    assert "bytes, more than" in assert_refused(["predict", run_copy, "moons:40", "-o", "-"],
                                                "preprocess.json")  # fmt: skip
    for change in ({"mean": [0.0] * 3}, {"scale": [0.0, 1.0]}, {"scale": None},
                   {"features": ["a"]}, {"classes": [0, 1, 2]}, {"loss": "pickle"},
                   {"task": "poetry"}, {"data": 5}):  # fmt: skip
        info_path.write_bytes(good)
        edit_json(info_path, **change)
        assert_refused(["evaluate", run_copy, "moons:40"], "preprocess.json")


def test_metrics_json_deeply_nested_is_refused(run_copy):
    (run_copy / "metrics.json").write_bytes(deep_json(50_000))
    assert "levels deep" in assert_refused(["evaluate", run_copy, "moons:40"], "metrics.json")


# ----------------------------------------------------------------------------- 6. checkpoints


def _checkpointed(path: Path, epochs: int = 1) -> None:
    X, y = ds.datasets.moons(40, seed=0)
    model = ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0)
    ds.fit(model, X, y, loss="categorical_cross_entropy", batch_size=10, epochs=epochs, seed=0,
           metrics=["accuracy"], callbacks=[ds.Checkpoint(path)], progress=False)  # fmt: skip


def test_checkpoint_with_nan_metric_sums_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    _checkpointed(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    info = json.loads(members["checkpoint.json"])
    assert info["sums"]["metrics"]
    for bad in (float("nan"), float("inf")):
        info["sums"]["metrics"] = dict.fromkeys(info["sums"]["metrics"], bad)
        members["checkpoint.json"] = json.dumps(info).encode()  # NaN, Infinity: Python's JSON
        path.write_bytes(zip_of(members))
        with pytest.raises(ds.ModelFileError, match="sums.metrics"):
            ds.load_checkpoint(path)


def test_checkpoint_paths_with_brackets_and_braces(tmp_path):
    # Another run's temporary file, which the glob ".run[1].ckpt.*.tmp" matched.
    other = tmp_path / ".run1.ckpt.abcd1234.tmp"
    other.write_bytes(b"another run's save in progress")
    _checkpointed(tmp_path / "run[1].ckpt")
    assert other.exists()
    assert ds.load_checkpoint(tmp_path / "run[1].ckpt").epoch == 1
    (tmp_path / "dir{x}").mkdir()
    _checkpointed(tmp_path / "dir{x}" / "run.ckpt")  # str.format raised KeyError 'x'
    assert ds.load_checkpoint(tmp_path / "dir{x}" / "run.ckpt").epoch == 1
    _checkpointed(tmp_path / "dir{x}" / "run-{epoch}.ckpt", epochs=2)
    assert sorted(p.name for p in (tmp_path / "dir{x}").iterdir()) == [
        "run-1.ckpt", "run-2.ckpt", "run.ckpt"]  # fmt: skip


def test_temporary_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    target = tmp_path / "run-{epoch}.ckpt"
    stale = tmp_path / ".run-1.ckpt.k1ll3d_x.tmp"  # what a save killed before its rename leaves
    stale.write_bytes(b"half a checkpoint")
    keep = tmp_path / ".run-1.ckpt.notmine.tmp.bak"
    keep.write_bytes(b"not a temporary of ours")
    _checkpointed(target)
    assert not stale.exists() and keep.exists()
    assert ds.load_checkpoint(tmp_path / "run-1.ckpt").epoch == 1


# ------------------------------------------------------------------- 7. deeply nested models


def test_a_model_nested_hundreds_deep_is_refused_at_load(tmp_path, run_copy):
    path = tmp_path / "deep.npz"
    path.write_bytes(zip_of({"model.json": nested_model_json(450)}))
    with pytest.raises(ds.ModelFileError, match="levels deep"):
        ds.load(path)
    shutil.copy(path, run_copy / "model.npz")
    assert_refused(["evaluate", run_copy, "moons:40"], "model.npz")
    # The deepest model a file may hold loads and works; one level more cannot be saved.
    model = ds.load(ds.save(ds.load(_nested_file(tmp_path, 49)), tmp_path / "again.npz"))
    assert ds.predict(model, np.ones((2, 3), np.float32)).shape == (2, 3)
    with pytest.raises(ValueError, match="levels deep"):
        ds.save(_nested_model(50), tmp_path / "too-deep.npz")


def _nested_model(depth: int):
    model = ds.nn.Activation("relu")
    for _ in range(depth):
        model = ds.nn.Sequential(model)
    return model


def _nested_file(tmp_path: Path, depth: int) -> Path:
    path = tmp_path / f"nested-{depth}.npz"
    path.write_bytes(zip_of({"model.json": nested_model_json(depth)}))
    return path


# ------------------------------------------------------------ 8. silent corruption of scales


def test_features_above_1e154_are_scaled_without_overflow(tmp_path):
    rows = [f"{(-1) ** i * 1e200 * (i + 1)!r},{0.5 * i},{i % 2}" for i in range(40)]
    (tmp_path / "huge.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    run = train(tmp_path, "run", str(tmp_path / "huge.csv"), "--batch", "full")
    info = json.loads((run / "preprocess.json").read_text())
    assert all(isinstance(v, float) and np.isfinite(v) and v > 0 for v in info["scale"])
    assert info["scale"][0] > 1e200
    code, stderr, caught = run_cli(["evaluate", run, tmp_path / "huge.csv"])
    assert code == 0 and not caught, stderr


def test_standardizer_statistics_do_not_overflow():
    X = np.array([[1e300, 1.0], [-5e299, 2.0], [3e299, 4.0]])
    scaler = ds.data.Standardizer().fit(X)
    assert np.isfinite(scaler.scale_).all() and np.isfinite(scaler.mean_).all()
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="column 0 .* too large"):
        ds.data.Standardizer().fit(np.array([[1.7e308], [1.6e308]]))  # X - mean overflows


# -------------------------------------------------------- 9. resource limits are usage errors


def test_deeply_nested_toml_and_long_csv_fields(tmp_path):
    config = tmp_path / "deep.toml"
    config.write_text("epochs = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_refused(["train", "moons", "--config", config], "deep.toml", code=2)
    rows = 'a,b,y\n1,"' + "x" * 200_000 + '",0\n2,3,1\n'
    (tmp_path / "long.csv").write_text(rows)
    assert "131,072" in assert_refused(["train", tmp_path / "long.csv"], "long.csv")


def test_npy_headers_that_claim_gigabytes_and_terabytes(tmp_path):
    for shape in ((1 << 29, 4), (1 << 40, 1 << 3)):  # 16 GB, 8 TB of float64
        path = tmp_path / "claims.npy"
        path.write_bytes(npy_with_shape(shape, data=b"\0" * 64))
        assert "announces" in assert_refused(["train", path, "--out", tmp_path / "o"],
                                             "claims.npy")  # fmt: skip
    # A sparse file that really holds 16 GB: refused by the memory estimate, never read.
    path = tmp_path / "sparse.npy"
    header = npy_with_shape((1 << 29, 4))
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + (16 << 30))
    stderr = assert_refused(["train", path], "sparse.npy", code=2)
    assert "available" in stderr and "memory" in stderr
    assert not (tmp_path / "o").exists()


def test_enormous_networks_and_data_sets_are_usage_errors(tmp_path):
    stderr = assert_refused(["train", "moons", "--hidden", "1000000000000", "--out",
                             tmp_path / "o"], "--hidden", code=2)  # fmt: skip
    assert "available" in stderr
    assert_refused(["compare", "moons", "--hidden", "200000,200000", "--out", tmp_path / "c"],
                   "--hidden", code=2)  # fmt: skip
    assert_refused(["surface", "--problem", "camel", "--starts", "1000000000000", "--out",
                    tmp_path / "s"], "--starts", code=2)  # fmt: skip
    stderr = assert_refused(["train", "moons:100000000000"], "moons:100000000000", code=2)
    assert "fewer samples" in stderr


def test_data_that_links_to_a_device_or_is_an_npz(tmp_path, run_copy):
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    assert_refused(["train", tmp_path / "zero.csv"], "/dev/zero", "zero.csv")
    assert_refused(["evaluate", run_copy, tmp_path / "zero.csv"], "/dev/zero", "zero.csv")
    (tmp_path / "arrays.npy").write_bytes(npz_of(a=np.zeros((4, 3))))
    assert ".npz" in assert_refused(["evaluate", run_copy, tmp_path / "arrays.npy"], "arrays.npy")
    assert_refused(["predict", run_copy, tmp_path / "arrays.npy", "-o", "-"], "arrays.npy")


# ----------------------------------------------------------------- 10. quietly ignored input


def test_a_misspelled_config_table_is_an_error(tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text("[trian]\nepochs = 3\n")
    assert "[train]" in assert_refused(["train", "moons", "--config", config], "[trian]", code=2)
    config.write_text("[compare]\nseeds = [1, 2]\n[train]\nepochs = 1\n")  # another command's
    code, stderr, _ = run_cli(["train", "moons:60", "--config", config, "--no-figures",
                               "--quiet", "--out", tmp_path / "ok"])  # fmt: skip
    assert code == 0, stderr


def test_a_nan_target_in_an_npy_file_is_an_error(tmp_path):
    data = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, np.nan], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    np.save(tmp_path / "t.npy", data)
    assert "row 1" in assert_refused(["train", tmp_path / "t.npy"], "t.npy")


def test_a_line_separator_inside_a_quoted_label_is_kept(tmp_path):
    label = "cat\u2028dog"
    rows = "".join(f'{i},"{label if i % 2 else "bird"}"\n' for i in range(12))
    (tmp_path / "labels.csv").write_text("a,y\n" + rows, encoding="utf-8")
    run = train(tmp_path, "run", str(tmp_path / "labels.csv"), "--batch", "full")
    info = json.loads((run / "preprocess.json").read_text())
    assert sorted(info["classes"]) == ["bird", label]
    code, stderr, _ = run_cli(["evaluate", run, tmp_path / "labels.csv"])
    assert code == 0, stderr


def test_ignored_or_infinite_arguments_are_errors(tmp_path, run_copy):
    assert_refused(["surface", "--lrs", "-1", "--out", tmp_path / "s"], "--lrs", code=2)
    assert_refused(["surface", "--problem", "camel", "--lrs", "-1"], "--lrs", code=2)
    assert_refused(["surface", "--start", "inf,0", "--out", tmp_path / "s"], "--start", code=2)
    assert not (tmp_path / "s").exists()
    for extent in ("inf", "nan", "1e308"):
        assert_refused(["landscape", run_copy, "--extent", extent], "--extent", code=2)
    rows = "".join(f"{(-1) ** i * 1e308!r},{i % 2}\n" for i in range(20))
    (tmp_path / "max.csv").write_text("a,y\n" + rows)
    assert_refused(["train", tmp_path / "max.csv", "--no-standardize"], "max.csv", "'a'")


# --------------------------------------------------------------------------- 11. the library


def test_nan_in_memory_mapped_data_stops_before_the_update(tmp_path):
    X, y = ds.datasets.moons(40, seed=0)
    for bad_x in (True, False):
        Xb, yb = X.copy(), y.astype(np.float64)
        if bad_x:
            Xb[[0, 13], 1] = np.nan
        else:
            yb[[0, 13]] = np.nan
        np.save(tmp_path / "X.npy", Xb)
        np.save(tmp_path / "y.npy", yb)
        Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
        ym = np.load(tmp_path / "y.npy", mmap_mode="r")
        name = "X" if bad_x else "y"
        # In the first batch (row 0): not one update is made.
        for batch_size in ("full", 8, 1):
            model = ds.nn.mlp([2, 4, 1], output_activation="sigmoid", seed=0)
            before = [p.data.copy() for p in model.parameters()]
            # (A NaN target may also be caught up front by the cost's check of y.)
            with pytest.raises(
                ValueError, match=f"{name} (holds NaN or inf in row 0|does not fit)"
            ):
                ds.fit(model, Xm, ym, loss="binary_cross_entropy", batch_size=batch_size,
                       epochs=1, shuffle=False, progress=False)  # fmt: skip
            after = [p.data for p in model.parameters()]
            assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        # Shuffled: the message names the row of the file, whichever batch holds it.
        with pytest.raises(ValueError, match=f"{name} (holds NaN or inf in row (0|13) |does not)"):
            ds.fit(
                ds.nn.mlp([2, 4, 1], output_activation="sigmoid", seed=0),
                Xm,
                ym,
                loss="binary_cross_entropy",
                batch_size=5,
                epochs=1,
                seed=1,
                progress=False,
            )


def test_backprop_with_an_infinite_input_gives_its_error_without_warnings():
    model = ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="X contains 1 infinite value"):
            ds.backprop(model, np.array([[np.inf, 1.0]]), np.array([1]),
                        "categorical_cross_entropy")  # fmt: skip


# ------------------------------------------------------------------------------- the sweep

# Each command that reads a run folder, with RUN for the folder and OUT for a path outside it.
COMMANDS = {
    "evaluate": ["evaluate", "RUN", "moons:40"],
    "predict": ["predict", "RUN", "moons:40", "-o", "OUT/predictions.csv"],
    "inspect": ["inspect", "RUN", "--out", "RUN/inspect"],
    "landscape": ["landscape", "RUN", "--resolution", "3", "--out", "RUN/landscape"],
    "gradcheck": ["gradcheck", "RUN", "--samples", "2"],
}
EVERY = tuple(COMMANDS)


def _special(kind: str):
    def make(path: Path) -> None:
        path.unlink(missing_ok=True)
        if kind == "devzero":
            path.symlink_to("/dev/zero")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "folder":
            path.mkdir()
        else:  # 200 MB, sparse
            with open(path, "wb") as f:
                f.write(b"{")
                f.truncate(200 << 20)

    return make


def _write(content: bytes):
    return lambda path: path.write_bytes(content)


def _json_edit(**changes):
    return lambda path: edit_json(path, **changes)


def _model_with(change):
    def make(path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        change(members)
        path.write_bytes(zip_of(members))

    return make


def _nan_weights(members: dict) -> None:
    members["0.weight.npy"] = npy_with_shape((2, 32), np.float32, np.full(64, np.nan, "<f4")
                                             .tobytes())  # fmt: skip


def _huge_weight(members: dict) -> None:
    members["0.weight.npy"] = npy_with_shape((2_000_000_000, 32), np.float32, b"\0" * 256)


def _pickled_weight(members: dict) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    members["0.weight.npy"] = buffer.getvalue()


SPECIALS = {k: _special(k) for k in ("devzero", "fifo", "folder", "200MB")}
HOSTILE: dict[str, dict[str, tuple]] = {
    "model.npz": {
        "garbage": (_write(b"garbage" * 30), EVERY),
        "empty": (_write(b""), EVERY),
        "zip bomb": (
            _write(
                zip_of({"model.json": b"{}", "0.weight.npy": bytes(32 << 20)}, zipfile.ZIP_DEFLATED)
            ),
            EVERY,
        ),  # fmt: skip
        "nested 450 deep": (_write(zip_of({"model.json": nested_model_json(450)})), EVERY),
        "weights claim 256 GB": (_model_with(_huge_weight), EVERY),
        "pickled weights": (_model_with(_pickled_weight), EVERY),
        "NaN weights": (_model_with(_nan_weights), EVERY),
        **{kind: (make, EVERY) for kind, make in SPECIALS.items()},
    },
    "preprocess.json": {
        "garbage": (_write(b"\x00\xff garbage"), EVERY),
        "empty object": (_write(b"{}"), EVERY),
        "a list": (_write(b"[]"), EVERY),
        "nested 100000 deep": (_write(deep_json(100_000)), EVERY),
        "wrong-length mean": (_json_edit(mean=[0.0, 0.0, 0.0]), EVERY),
        "scale 0": (_json_edit(scale=[0.0, 1.0]), EVERY),
        "scale null": (_json_edit(scale=[None, 1.0]), EVERY),
        "NaN mean": (
            lambda p: p.write_text(
                p.read_text().replace('"mean": [', '"mean": [NaN, ').replace('"scale"', '"x_scale"')
            ),
            EVERY,
        ),  # fmt: skip
        "classes for another model": (_json_edit(classes=["a", "b", "c"]), EVERY),
        "features for another model": (_json_edit(features=["x0"]), EVERY),
        "unknown loss": (_json_edit(loss="__import__('os')"), EVERY),
        "data is a list": (_json_edit(data=["/dev/zero"]), EVERY),
        "data is a device": (_json_edit(data="/dev/zero"), ("inspect", "gradcheck")),
        **{kind: (make, EVERY) for kind, make in SPECIALS.items()},
    },
    "metrics.json": {
        "garbage": (_write(b"\xff\xfe{"), EVERY),
        "nested 50000 deep": (_write(b'{"a": ' + deep_json(50_000) + b"}"), EVERY),
        **{kind: (make, EVERY) for kind, make in SPECIALS.items()},
    },
    "config.toml": {
        "garbage": (_write(b"\x00\x01 = = ["), EVERY),
        "nested 5000 deep": (_write(b"epochs = " + deep_json(5000) + b"\n"), EVERY),
        "misspelled table": (_write(b"[trian]\nepochs = 3\n"), ("landscape",)),
        "data is a number": (_write(b"data = 5\nhidden = [[1]]\n"), ("landscape",)),
        "data is a device": (_write(b'data = "/dev/zero"\n'), ("landscape",)),
        "enormous data set": (_write(b'data = "moons:100000000000"\n'), ("landscape",)),
        **{kind: (make, EVERY) for kind, make in SPECIALS.items()},
    },
    "trajectory.npz": {
        "garbage": (_write(b"PK\x03\x04 garbage"), ("landscape",)),
        "no snapshots": (_write(npz_of(steps=np.arange(3))), ("landscape",)),
        "zip bomb": (
            _write(
                zip_of(
                    {"snapshots.npy": npy_with_shape((1 << 22,), data=bytes(32 << 20))},
                    zipfile.ZIP_DEFLATED,
                )
            ),
            ("landscape",),
        ),  # fmt: skip
        "member claims 100 GB": (
            _write(zip_of({"snapshots.npy": npy_with_shape((100_000_000, 125), data=b"\0" * 64)})),
            ("landscape",),
        ),  # fmt: skip
        "pickled snapshots": (
            _write(npz_of(snapshots=np.array([{}], dtype=object))),
            ("landscape",),
        ),  # fmt: skip
        "wrong shape": (_write(npz_of(snapshots=np.zeros((3, 5)))), ("landscape",)),
        "NaN snapshots": (
            lambda p: p.write_bytes(npz_of(snapshots=np.full((3, 129), np.nan))),
            ("landscape",),
        ),  # fmt: skip
        **{kind: (make, ("landscape",)) for kind, make in SPECIALS.items()},
    },
}


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[str, int]]:
    """Contents (hash) and mode of every file under ``root`` outside ``skip``."""
    seen = {}
    for path in sorted(root.rglob("*")):
        if path == skip or skip in path.parents or not path.is_file() or path.is_symlink():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        seen[str(path.relative_to(root))] = (digest, path.stat().st_mode)
    return seen


def sweep(sandbox: Path) -> list[dict]:
    """Run every command on every hostile variant (in this process); one record per run."""
    template, hostile = sandbox / "template", sandbox / "hostile"
    records = []
    run_cli(["evaluate", template, "moons:40"])  # import everything before measuring
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for file, variants in HOSTILE.items():
        for variant, (make, commands) in variants.items():
            shutil.rmtree(hostile, ignore_errors=True)
            shutil.copytree(template, hostile, symlinks=True)
            make(hostile / file)
            before = _snapshot(sandbox, hostile)
            for command in commands:  # each refuses before writing: they can share the folder
                argv = [a.replace("RUN", str(hostile)).replace("OUT", str(sandbox))
                        for a in COMMANDS[command]]  # fmt: skip
                code, stderr, caught = run_cli(argv)
                records.append({
                    "case": f"{file} ({variant}): descend {command}",
                    "problems": problems(code, stderr, caught, (file,)),
                    "outside changed": _snapshot(sandbox, hostile) != before,
                    "stderr": stderr,
                    "grew_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline,
                })  # fmt: skip
    shutil.rmtree(hostile, ignore_errors=True)
    return records


def test_sweep_every_command_on_every_hostile_run_folder_file(template, tmp_path):
    sandbox = tmp_path / "sandbox"
    shutil.copytree(template, sandbox / "template")
    shutil.copytree(template, sandbox / "earlier")  # a run that must come through untouched
    secret = sandbox / "secret.txt"
    secret.write_text("not descend's")
    secret.chmod(0o600)
    before = _snapshot(sandbox, sandbox / "hostile")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MPLBACKEND": "Agg"}  # fmt: skip
    child = subprocess.run(
        [sys.executable, __file__, str(sandbox)], capture_output=True, text=True, env=env,
        cwd=sandbox, timeout=300,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    records = json.loads(child.stdout)
    bad = [r for r in records if r["problems"] or r["outside changed"]]
    grew = max(r["grew_kb"] for r in records)
    COUNTS["tried"] += len(records)
    COUNTS["bad"] += len(bad)
    COUNTS["clean"] += len(records) - len(bad)
    assert len(records) > 150
    assert not bad, "\n".join(f"{r['case']}: {r['problems']} {r['stderr']!r}" for r in bad)
    assert grew < 150_000, f"the sweep's peak memory grew by {grew} kB"  # 150 MB
    COUNTS["sweep growth MB"] = grew // 1024
    assert _snapshot(sandbox, sandbox / "hostile") == before  # earlier run, secret: unchanged
    assert oct(secret.stat().st_mode & 0o777) == oct(0o600)


def test_report_counts():
    print(f"\nhostile command lines: {COUNTS['tried']} tried, {COUNTS['clean']} clean, "
          f"{COUNTS['bad']} bad; the sweep's peak memory grew by "
          f"{COUNTS.get('sweep growth MB', '?')} MB")  # fmt: skip
    assert COUNTS["bad"] == 0


if __name__ == "__main__":  # the sweep's child process: python test_cli_hostile.py SANDBOX
    with limited_memory(3 << 30):
        records = sweep(Path(sys.argv[1]))
    print(json.dumps(records))
