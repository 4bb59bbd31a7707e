"""save / load: JSON architecture + .npy weights in one archive, atomic, never unpickled."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import descend as ds


@pytest.fixture
def model():
    return ds.nn.Sequential(
        ds.nn.Dense(4, 6, activation="tanh", seed=0),
        ds.nn.Activation("relu"),
        ds.nn.Dense(6, 3, activation="softmax", seed=1),
    )


def test_round_trip_gives_identical_predictions(model, tmp_path):
    X = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    path = ds.save(model, tmp_path / "m.npz")
    loaded = ds.load(path)
    assert np.array_equal(ds.predict(loaded, X), ds.predict(model, X))
    assert loaded.get_config() == model.get_config()
    assert list(loaded.named_parameters()) == list(model.named_parameters())


def test_float64_models_stay_float64(tmp_path):
    model = ds.nn.mlp([3, 2], seed=0, dtype=np.float64)
    loaded = ds.load(ds.save(model, tmp_path / "m"))
    assert loaded.dtype == np.float64
    assert np.array_equal(loaded[0].weight.data, model[0].weight.data)


def test_file_is_an_npz_with_readable_json(model, tmp_path):
    path = ds.save(model, tmp_path / "m")
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as npz:
        assert np.array_equal(npz["0.weight"], model[0].weight.data)
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("model.json"))
    assert config["architecture"]["layers"][2]["activation"] == "softmax"
    assert config["parameters"]["2.bias"] == {"shape": [3], "dtype": "float32"}


def test_save_is_atomic_and_an_interrupted_save_keeps_the_old_file(model, tmp_path, monkeypatch):
    path = ds.save(model, tmp_path / "m.npz")
    before = path.read_bytes()
    other = ds.nn.mlp([4, 3], seed=5)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        ds.save(other, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind


def test_custom_activation_cannot_be_saved_and_says_why(tmp_path):
    model = ds.nn.Sequential(ds.nn.Dense(2, 2, activation=lambda z: z * 2))
    with pytest.raises(ValueError, match="custom activation"):
        ds.save(model, tmp_path / "m")
    assert not list(tmp_path.iterdir())


def _rewrite(path, replace):
    """Copy the archive with some members replaced (None deletes)."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members.update(replace)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            if data is not None:
                z.writestr(name, data)


def _npy(array):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def test_missing_file_and_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        ds.load(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ds.ModelFileError, match="not a descend model file"):
        ds.load(tmp_path / "text.npz")


@pytest.mark.parametrize(
    ("replace", "match"),
    [
        ({"model.json": None}, "no model.json"),
        ({"model.json": b"{not json"}, "not valid JSON"),
        ({"model.json": b'{"format": "other"}'}, "does not describe a descend model"),
        ({"0.weight.npy": None}, "missing"),
        ({"0.weight.npy": b"garbage"}, "no valid array header"),
        ({"0.weight.npy": "shape"}, "has shape"),
        ({"0.weight.npy": "dtype"}, "float32 or float64"),
        ({"0.weight.npy": "object"}, "float32 or float64"),
        ({"0.weight.npy": "truncated"}, "truncated|holds"),
        ({"0.weight.npy": "huge"}, "has shape|announces"),
    ],
)
def test_broken_or_hostile_files_raise_model_file_error(model, tmp_path, replace, match):
    path = ds.save(model, tmp_path / "m.npz")
    weight = model[0].weight.data
    makers = {
        "shape": lambda: _npy(np.zeros((5, 6), np.float32)),
        "dtype": lambda: _npy(weight.astype(np.int32)),
        "object": lambda: _npy(np.array([{"a": 1}, None], dtype=object)),
        "truncated": lambda: _npy(weight)[:-40],
        "huge": lambda: _npy(weight).replace(b"(4, 6)", b"(4000000000, 6)"),
    }
    replace = {k: makers[v]() if isinstance(v, str) else v for k, v in replace.items()}
    _rewrite(path, replace)
    with pytest.raises(ds.ModelFileError, match=match):
        ds.load(path)


def test_huge_shape_announced_in_a_consistent_file_is_refused_before_allocating(tmp_path):
    model = ds.nn.mlp([4, 6], seed=0)
    path = ds.save(model, tmp_path / "m.npz")
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("model.json"))
    # Architecture and header both claim a 4e9 x 6 weight; the file holds 96 bytes.
    config["architecture"]["layers"][0]["in_features"] = 4_000_000_000
    config["parameters"]["0.weight"]["shape"] = [4_000_000_000, 6]
    header = _npy(model[0].weight.data).replace(b"(4, 6)", b"(4000000000, 6)")
    _rewrite(path, {"model.json": json.dumps(config).encode(), "0.weight.npy": header})
    with pytest.raises(ds.ModelFileError, match="announces about"):
        ds.load(path)


def test_write_archive_and_archive_reader_round_trip_json_and_arrays(tmp_path):
    from descend.io import ArchiveReader, write_archive

    arrays = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.asfortranarray(np.arange(6.0).reshape(3, 2)),
        "counts": np.array([1, 2, 3], dtype=np.int64),
        "empty": np.zeros((0, 4)),
    }
    path = write_archive(tmp_path / "x.npz", {"info.json": {"n": 2, "nan": float("nan")}}, arrays)
    with ArchiveReader(path, what="test file") as archive:
        assert archive.names == {"info.json", "a.npy", "b.npy", "counts.npy", "empty.npy"}
        info = archive.read_json("info.json")
        assert info["n"] == 2 and np.isnan(info["nan"])
        for name, value in arrays.items():
            dtypes = (value.dtype,)
            got = archive.read_array(name, shape=value.shape, dtypes=dtypes)
            assert got.dtype == value.dtype and np.array_equal(got, value)
            assert got.flags.c_contiguous and got.flags.writeable
        with pytest.raises(ds.ModelFileError, match="float32 or float64"):
            archive.read_array("counts")
        with pytest.raises(ds.ModelFileError, match="needs"):
            archive.read_array("a", shape=(3, 2))
        with pytest.raises(ds.ModelFileError, match="members 'zzz.npy' are missing"):
            archive.check_members(archive.names | {"zzz.npy"})
    with pytest.raises(ValueError, match="member name"):
        write_archive(tmp_path / "y.npz", {"../evil.json": {}}, {})
    with pytest.raises(TypeError, match="dtype"):
        write_archive(tmp_path / "y.npz", {}, {"o": np.array([None], dtype=object)})
    assert not (tmp_path / "y.npz").exists()


def test_load_reads_the_model_out_of_a_checkpoint(tmp_path):
    X, y = ds.datasets.moons(30, seed=0)
    model = ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0)
    ckpt = tmp_path / "run.ckpt"
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer="adam", batch_size=10,
           epochs=1, progress=False, callbacks=[ds.Checkpoint(ckpt)])  # fmt: skip
    loaded = ds.load(ckpt)
    for p, q in zip(model.parameters(), loaded.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
    # A plain model file, though, holds nothing else.
    path = ds.save(model, tmp_path / "m.npz")
    _rewrite(path, {"optimizer.state.0.m.npy": _npy(np.zeros((2, 4), np.float32))})
    with pytest.raises(ds.ModelFileError, match="unexpected members"):
        ds.load(path)


def test_saved_files_get_the_mode_a_plain_open_gives(tmp_path):
    umask = os.umask(0o022)
    try:
        path = ds.save(ds.nn.mlp([2, 1], seed=0), tmp_path / "m.npz")
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o600)  # an existing file keeps its mode
        ds.save(ds.nn.mlp([2, 1], seed=1), path)
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(umask)
