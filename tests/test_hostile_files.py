"""Broken and hostile model files and checkpoints: one clear error, no code run, no big allocation.

Every case must raise :class:`descend.ModelFileError` (or FileNotFoundError for a missing file)
with a message naming the problem. The fuzz tests mutate valid files (byte flips, truncations,
insertions, deletions) and accept exactly two outcomes: the load succeeds with arrays identical to
the original's, or it raises ModelFileError.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import descend as ds

FUZZED: dict[str, int] = {}


def _count(kind: str, n: int = 1) -> None:
    FUZZED[kind] = FUZZED.get(kind, 0) + n


# --- fixtures: one valid model file and one valid checkpoint ---------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid")
    model = ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0)
    X, y = ds.datasets.moons(20, seed=0)
    ckpt = folder / "run.ckpt"
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer="adam", batch_size=7,
           epochs=2, seed=0, progress=False,
           callbacks=[ds.Checkpoint(ckpt, every=5, unit="steps")])  # fmt: skip
    path = ds.save(model, folder / "m.npz")
    return {"model": path.read_bytes(), "checkpoint": ckpt.read_bytes(), "net": model}


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def _zip(members, compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of one test
        with zipfile.ZipFile(buffer, "w", compression=compression) as z:
            for name, blob in members:
                z.writestr(name, blob)
    return buffer.getvalue()


def _replace(data: bytes, name: str, blob: bytes | None) -> bytes:
    members = [(n, blob if n == name else b) for n, b in _members(data)]
    return _zip([(n, b) for n, b in members if b is not None])


def _npy(array, version=None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=True)
    return buffer.getvalue()


def _write(tmp_path: Path, data: bytes, name="bad.npz") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _assert_load_fails(path: Path, match: str, loader=ds.load) -> str:
    with pytest.raises(ds.ModelFileError, match=match) as info:
        loader(path)
    assert str(path) in str(info.value)
    return str(info.value)


# --- named cases --------------------------------------------------------------------------


def test_not_an_archive_empty_missing_or_a_folder(tmp_path):
    for content in (b"", b"hello", b"PK\x03\x04" + b"\x00" * 40, os.urandom(500)):
        _assert_load_fails(_write(tmp_path, content), "not a descend model file")
    with pytest.raises(FileNotFoundError, match="no model file"):
        ds.load(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError):
        ds.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ds.load_checkpoint(tmp_path / "absent.ckpt")


@pytest.mark.parametrize(
    ("member", "blob", "match"),
    [
        ("model.json", None, "members .* missing|has no model.json"),
        ("model.json", b"{not json", "not valid JSON"),
        ("model.json", b"[1, 2]", "not a JSON object"),
        ("model.json", b"\xff\xfe", "not valid JSON"),
        ("model.json", b"[" * 100_000 + b"]" * 100_000, "100000 levels deep"),
        ("model.json", b'{"format": "other"}', "does not describe a descend model"),
        ("model.json", b" " * (1 << 20) + b"{}", "announces .* bytes, more than"),
        ("0.weight.npy", None, r"weights of '0.weight' .* missing"),
        ("0.weight.npy", b"garbage", "no valid array header"),
        ("0.weight.npy", "shape", "has shape"),
        ("0.weight.npy", "int32", "dtype '<i4'"),
        ("0.weight.npy", "float16", "dtype '<f2'"),
        ("0.weight.npy", "big-endian", "dtype '>f4'"),
        ("0.weight.npy", "object", r"dtype '\|O'"),
        ("0.weight.npy", "truncated", "announces .* bytes of data"),
        ("0.weight.npy", "trailing", "announces .* bytes of data"),
        ("0.weight.npy", "huge", "has shape|announces"),
        ("0.weight.npy", "negative", "no valid array header"),
        ("0.weight.npy", "header-code", "no valid array header"),
        ("0.weight.npy", "long-header", "no valid array header"),
        ("extra.npy", "extra", "unexpected members"),
    ],
)
def test_broken_members_raise_model_file_error(files, tmp_path, member, blob, match):
    weight = files["net"][0].weight.data
    header = _npy(weight)
    makers = {
        "shape": lambda: _npy(np.zeros((3, 2), np.float32)),
        "int32": lambda: _npy(weight.astype(np.int32)),
        "float16": lambda: _npy(weight.astype(np.float16)),
        "big-endian": lambda: _npy(weight.astype(">f4")),
        "object": lambda: _npy(np.array([{"a": 1}, None], dtype=object)),
        "truncated": lambda: header[:-5],
        "trailing": lambda: header + b"\x00" * 4,
        "huge": lambda: header.replace(b"(2, 3)", b"(4000000000, 3)"),
        "negative": lambda: header.replace(b"(2, 3)", b"(-2, -3)"),
        "header-code": lambda: header.replace(b"'descr': '<f4'", b"'descr': __import__('os')"),
        "long-header": lambda: b"\x93NUMPY\x02\x00" + struct.pack("<I", 10**9) + b"{" * 100,
        "extra": lambda: _npy(weight),
    }
    blob = makers[blob]() if isinstance(blob, str) else blob
    data = files["model"]
    if member == "extra.npy":
        data = _zip(_members(data) + [(member, blob)])
    else:
        data = _replace(data, member, blob)
    _assert_load_fails(_write(tmp_path, data), match)


def test_a_pickled_object_inside_is_refused_and_never_run(files, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    blob = _npy(np.array([Payload()], dtype=object))
    # The payload is live: NumPy with allow_pickle=True would run it.
    np.load(io.BytesIO(blob), allow_pickle=True)
    assert marker.exists()
    marker.rmdir()
    path = _write(tmp_path, _replace(files["model"], "0.weight.npy", blob))
    _assert_load_fails(path, "never objects")
    ckpt = _write(tmp_path, _replace(files["checkpoint"], "optimizer.state.0.m.npy", blob), "c")
    _assert_load_fails(ckpt, "never objects", ds.load_checkpoint)
    assert not marker.exists()


def test_a_pickle_as_model_json_is_not_unpickled(files, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    path = _write(tmp_path, _replace(files["model"], "model.json", pickle.dumps(Payload())))
    _assert_load_fails(path, "not valid JSON")
    assert not marker.exists()


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    except ds.ModelFileError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_enormous_shapes_are_refused_before_anything_is_allocated(files, tmp_path):
    config = json.loads(dict(_members(files["model"]))["model.json"])
    weight = files["net"][0].weight.data
    # Architecture, parameter table and header all agree on a 4e9 x 3 weight (48 GB).
    config["architecture"]["layers"][0]["in_features"] = 4_000_000_000
    config["parameters"]["0.weight"]["shape"] = [4_000_000_000, 3]
    header = _npy(weight).replace(b"(2, 3)", b"(4000000000, 3)")
    data = _replace(_replace(files["model"], "model.json", json.dumps(config).encode()),
                    "0.weight.npy", header)  # fmt: skip
    path = _write(tmp_path, data)
    _assert_load_fails(path, "announces about .* bytes of weights")
    assert _peak_bytes(lambda: ds.load(path)) < 2_000_000
    # The header alone announcing it (the architecture is honest): refused by its shape.
    path = _write(tmp_path, _replace(files["model"], "0.weight.npy", header), "h.npz")
    _assert_load_fails(path, "has shape")
    # In a checkpoint's optimizer state, where any shape could be expected.
    blob = _npy(np.zeros((2, 3), np.float32)).replace(b"(2, 3)", b"(4000000000, 3)")
    ckpt = _write(tmp_path, _replace(files["checkpoint"], "optimizer.state.0.m.npy", blob), "c")
    _assert_load_fails(ckpt, "has shape", ds.load_checkpoint)
    assert _peak_bytes(lambda: ds.load_checkpoint(ckpt)) < 2_000_000


def _patch_central(data: bytes, name: str, offset: int, fmt: str, value) -> bytes:
    """Overwrite a field of ``name``'s central-directory record."""
    start = data.index(b"PK\x01\x02")
    while True:
        n_name = struct.unpack("<H", data[start + 28 : start + 30])[0]
        if data[start + 46 : start + 46 + n_name] == name.encode():
            break
        start = data.index(b"PK\x01\x02", start + 4)
    data = bytearray(data)
    data[start + offset : start + offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(data)


def test_zip_bombs_and_lying_sizes_are_refused(files, tmp_path):
    # 64 MB of zeros deflate to 64 kB: a member that would expand 1000 times.
    members = _members(files["model"]) + [("bomb.npy", b"\x00" * (64 << 20))]
    bomb = _write(tmp_path, _zip(members, zipfile.ZIP_DEFLATED))
    _assert_load_fails(bomb, "is compressed")
    assert bomb.stat().st_size < 1 << 20
    assert _peak_bytes(lambda: ds.load(bomb)) < 4_000_000
    # A stored member whose directory entry declares more than it stores.
    lying = _patch_central(files["model"], "0.weight.npy", 24, "<I", 1 << 30)
    _assert_load_fails(_write(tmp_path, lying, "l.npz"), "declares 1073741824 bytes but stores")
    # ... or sizes that run past the end of the file.
    both = _patch_central(lying, "0.weight.npy", 20, "<I", 1 << 30)
    _assert_load_fails(_write(tmp_path, both, "b.npz"), "beyond the end of the file|not a descend")


def test_duplicate_path_like_and_encrypted_members_are_refused(files, tmp_path):
    members = _members(files["model"])
    duplicate = _zip(members + [("0.weight.npy", dict(members)["0.weight.npy"])])
    _assert_load_fails(_write(tmp_path, duplicate), "appears twice")
    for name in ("../0.weight.npy", "/etc/0.weight.npy", "sub/0.weight.npy", "a\\b.npy",
                 ".hidden.npy", "x\x00.npy"):  # fmt: skip
        data = _zip(members + [(name, b"x")])
        _assert_load_fails(_write(tmp_path, data, "p.npz"), "member named|not a descend")
    encrypted = _patch_central(files["model"], "0.weight.npy", 8, "<H", 1)
    _assert_load_fails(_write(tmp_path, encrypted, "e.npz"), "encrypted")


def test_fortran_ordered_and_version_2_arrays_are_read_correctly(files, tmp_path):
    weight = files["net"][0].weight.data
    for blob in (_npy(np.asfortranarray(weight)), _npy(weight, version=(2, 0))):
        model = ds.load(_write(tmp_path, _replace(files["model"], "0.weight.npy", blob)))
        assert np.array_equal(model[0].weight.data, weight)
        assert model[0].weight.data.flags.c_contiguous and model[0].weight.data.flags.writeable


def _checkpoint_with(files, change) -> bytes:
    members = dict(_members(files["checkpoint"]))
    info = json.loads(members["checkpoint.json"])
    change(info)
    members["checkpoint.json"] = json.dumps(info).encode()
    return _zip(list(members.items()))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c["position"].update(epoch=-1), "position.epoch"),
        (lambda c: c["position"].update(step=3), "disagree"),
        (lambda c: c["position"].update(batches_done=99), "batches done"),
        (lambda c: c.update(format="other"), "does not describe a descend checkpoint"),
        (lambda c: c.update(version=99), "version 99"),
        (lambda c: c["rng"].update(bit_generator="os.system"), "random generator"),
        (lambda c: c["rng"]["state"].update(state="nope"), "state is invalid"),
        (lambda c: c["sums"].update(total="NaN"), "sums.total"),
        (lambda c: c["sums"].update(metrics={"accuracy": "high"}), "sums.metrics"),
        (lambda c: c["optimizer"].update(config={"class_name": "os.system"}), "optimizer"),
        (lambda c: c["optimizer"]["scalars"].update(iterations=-4), "counters"),
        (lambda c: c["optimizer"]["arrays"].append("state.9.m"), "unexpected"),
        (lambda c: c["optimizer"]["arrays"].append("../../x"), "unexpected"),
        (lambda c: c["history"].update(n_updates=4), "history|disagree"),
        (lambda c: c["history"]["epoch_keys"].append("extra"), "missing"),
        (lambda c: c["history"].update(step_keys=["loss"]), "per-update loss|unexpected"),
        (lambda c: c.pop("fit"), "no 'fit' table"),
        (lambda c: c.update(history=[]), "no 'history' table"),
    ],
)
def test_altered_checkpoint_state_raises_model_file_error(files, tmp_path, change, match):
    path = _write(tmp_path, _checkpoint_with(files, change), "c.ckpt")
    _assert_load_fails(path, match, ds.load_checkpoint)
    # fit(resume_from=...) reports it the same way, before touching the model.
    model = ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0)
    before = model.state_dict()
    X, y = ds.datasets.moons(20, seed=0)
    with pytest.raises(ds.ModelFileError):
        ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer="adam", batch_size=7,
               epochs=3, progress=False, resume_from=path)  # fmt: skip
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())


def test_optimizer_state_of_the_wrong_shape_is_refused(files, tmp_path):
    blob = _npy(np.zeros((3, 2), np.float32))
    path = _write(tmp_path, _replace(files["checkpoint"], "optimizer.state.0.m.npy", blob), "c")
    _assert_load_fails(path, "has shape", ds.load_checkpoint)


# --- fuzzing --------------------------------------------------------------------------------


def _mutate(data: bytes, ops) -> bytes:
    out = bytearray(data)
    for op in ops:
        kind, pos = op[0], op[1] % (len(out) + 1)
        if kind == "flip" and pos < len(out):
            out[pos] ^= op[2]
        elif kind == "truncate":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = op[2]
        elif kind == "delete":
            del out[pos : pos + op[2]]
    return bytes(out)


def _same_model(a, b) -> bool:
    return a.get_config() == b.get_config() and all(
        p.dtype == q.dtype and np.array_equal(p.data, q.data)
        for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )


def _check_model_file(path: Path, original) -> str:
    """'ok' (identical) or 'refused'; anything else fails the test."""
    try:
        model = ds.load(path)
    except (ds.ModelFileError, FileNotFoundError):
        return "refused"
    assert _same_model(model, original), "loaded with different content"
    return "ok"


def _check_checkpoint_file(path: Path, original) -> str:
    try:
        state = ds.load_checkpoint(path)
    except (ds.ModelFileError, FileNotFoundError):
        return "refused"
    assert _same_model(state.model, original.model)
    assert state.position == original.position and state.history.step == original.history.step
    assert state.history.epoch == original.history.epoch and state.fit == original.fit
    assert state.rng_state == original.rng_state and state.optimizer_config == (
        original.optimizer_config
    )
    for key, value in original.optimizer_state.items():
        assert np.array_equal(state.optimizer_state[key], value)
    return "ok"


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
        st.tuples(st.just("truncate"), st.integers(0, 10**6)),
        st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=32)),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
    ),
    min_size=1,
    max_size=4,
)
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@FUZZ
@given(ops=OPS)
def test_fuzzed_model_files_load_identically_or_raise_model_file_error(files, tmp_path, ops):
    path = _write(tmp_path, _mutate(files["model"], ops), "fuzz.npz")
    _count(f"hypothesis model: {_check_model_file(path, files['net'])}")


@FUZZ
@given(ops=OPS)
def test_fuzzed_checkpoints_load_identically_or_raise_model_file_error(files, tmp_path, ops):
    original = ds.load_checkpoint(_write(tmp_path, files["checkpoint"], "orig.ckpt"))
    path = _write(tmp_path, _mutate(files["checkpoint"], ops), "fuzz.ckpt")
    _count(f"hypothesis checkpoint: {_check_checkpoint_file(path, original)}")


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_every_truncation_and_byte_flip_is_caught(files, tmp_path, kind):
    data = files[kind]
    stride = 1 if kind == "model" else 7
    if kind == "model":
        check, original = _check_model_file, files["net"]
    else:
        check, original = _check_checkpoint_file, ds.load_checkpoint(_write(tmp_path, data, "o"))
    outcomes = {"ok": 0, "refused": 0}
    for pos in range(0, len(data), stride):
        for mutated in (data[:pos], _mutate(data, [("flip", pos, 0x5A)])):
            outcomes[check(_write(tmp_path, mutated, "sweep"), original)] += 1
    # Every truncation is refused; a flip loads only where zipfile ignores the byte.
    assert outcomes["refused"] >= len(range(0, len(data), stride))
    _count(f"sweep {kind}: ok", outcomes["ok"])
    _count(f"sweep {kind}: refused", outcomes["refused"])


def test_report_counts():
    """Not a check: prints how many mutated files each test loaded (run with -s, without -n)."""
    print(f"\nfuzzed files: {FUZZED}")
