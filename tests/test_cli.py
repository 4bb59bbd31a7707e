"""The ``descend`` command, run in-process through ``main([...])``: success paths and errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import descend as ds
from descend.cli import main
from descend.cli.options import dump_toml

pytest.importorskip("sklearn")  # the built-in real data sets come with scikit-learn

COMMANDS = ["train", "evaluate", "predict", "compare", "surface", "landscape", "inspect",
            "gradcheck", "datasets"]  # fmt: skip
TINY = ["--epochs", "2", "--hidden", "8", "--seed", "0", "-q", "--no-figures"]


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of ``descend argv``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A tiny trained run on digits 0-3 (module-wide: every read-only command uses it)."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "digits:0-3", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def csv_file(tmp_path):
    """A CSV file with a header, two numeric features and text class labels."""
    rng = np.random.default_rng(0)
    rows = ["height,width,species"]
    for i in range(60):
        kind = ("cat", "dog", "fox")[i % 3]
        h, w = rng.normal(size=2) + (i % 3) * 2
        rows.append(f"{h:.4f},{w:.4f},{kind}")
    path = tmp_path / "animals.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


# --- help, entry points ------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    assert f"descend {command}" in out and "examples:" in out


def test_top_level_help_version_and_no_command(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and all(c in out for c in COMMANDS)
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and ds.__version__ in out
    code, out, _ = run_cli(capsys)
    assert code == 2 and "COMMAND" in out


def test_unknown_command_and_unknown_flag_are_usage_errors(capsys):
    code, _, err = run_cli(capsys, "trian")
    assert code == 2
    assert_one_line_error(err, "invalid choice", "--help")
    code, _, err = run_cli(capsys, "train", "digits", "--epoks", "3")
    assert code == 2
    assert_one_line_error(err, "--epoks", "descend train --help")


def test_datasets_lists_names_sizes_and_tasks(capsys):
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0
    for name in ("digits", "breast_cancer", "diabetes", "moons", "circles", "spiral", "xor"):
        assert name in out
    assert "1797" in out and "regression" in out and "classification" in out


# --- train ---------------------------------------------------------------------------------------


def test_train_writes_the_run_folder(digits_run):
    names = {p.name for p in digits_run.iterdir()}
    for expected in ("model.npz", "config.toml", "preprocess.json", "history.csv", "steps.csv",
                     "metrics.json", "report.html"):  # fmt: skip
        assert expected in names
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and not metrics["interrupted"]
    assert set(metrics["splits"]) == {"train", "validation", "test"}
    assert metrics["splits"]["test"]["samples"] == 144  # ceil(0.2 * 720)
    model = ds.load(digits_run / "model.npz")
    assert [p.shape for p in model.parameters()] == [(64, 8), (8,), (8, 4), (4,)]
    history = (digits_run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,accuracy,val_loss") and len(history) == 3


def test_train_prints_a_summary_and_epoch_lines(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "moons:100", "--epochs", "3", "--seed", "1",
                             "--hidden", "4", "--out", tmp_path / "m", "--no-figures")  # fmt: skip
    assert code == 0
    assert "epoch 1/3" in err and "epoch 3/3" in err
    assert "data   moons:100" in out and "2-4-1" in out  # 2 classes: one sigmoid output
    assert "binary_cross_entropy" in out
    assert "test" in out and "accuracy" in out and "report.html" in out


def test_train_regression_reports_errors_in_target_units(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", "diabetes", "--out", tmp_path / "d", *TINY)
    assert code == 0
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert metrics["task"] == "regression" and metrics["loss"] == "mse"
    test = metrics["splits"]["test"]
    assert {"loss", "mse", "mae", "r2"} <= set(test)
    assert test["mse"] > 100  # in the target's units (progression 25..346), not standardised
    code, out, _ = run_cli(capsys, "predict", tmp_path / "d", "diabetes", "-o", "-")
    assert code == 0
    values = [float(line) for line in out.splitlines()[1:]]
    assert len(values) == 442 and 25 < np.mean(values) < 346  # back in the target's units


def test_train_on_a_csv_with_text_labels_then_predict_and_evaluate(capsys, tmp_path, csv_file):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "train", csv_file, "--target", "species", "--out", out,
                              "--epochs", "20", "--seed", "0", "--batch", "full", "-q",
                              "--no-figures")  # fmt: skip
    assert code == 0, stdout
    info = json.loads((out / "preprocess.json").read_text())
    assert info["classes"] == ["cat", "dog", "fox"] and info["features"] == ["height", "width"]
    # New data: columns in another order, no target column.
    new = tmp_path / "new.csv"
    new.write_text("width,height\n0.1,0.2\n4.0,4.1\n")
    code, stdout, _ = run_cli(capsys, "predict", out, new, "-o", tmp_path / "p.csv")
    assert code == 0 and "2 predictions" in stdout
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "prediction,p_cat,p_dog,p_fox"
    assert lines[1].split(",")[0] in ("cat", "dog", "fox")
    assert abs(sum(map(float, lines[1].split(",")[1:])) - 1) < 1e-5
    code, stdout, _ = run_cli(capsys, "evaluate", out, csv_file, "--json")
    assert code == 0
    assert json.loads(stdout)["samples"] == 60


def test_train_on_a_npy_file_with_a_target_index(capsys, tmp_path):
    X, y = ds.datasets.xor(80, seed=0)
    table = np.column_stack([y, X]).astype(np.float64)  # the target first
    path = tmp_path / "xor.npy"
    np.save(path, table)
    code, out, err = run_cli(capsys, "train", path, "--target", "0", "--out", tmp_path / "x",
                             *TINY)  # fmt: skip
    assert code == 0, err
    info = json.loads((tmp_path / "x" / "preprocess.json").read_text())
    assert info["task"] == "classification" and info["classes"] == [0, 1]
    assert len(info["features"]) == 2


def test_optimizers_and_batch_variants(capsys, tmp_path):
    for i, (opt, batch) in enumerate((("gd", "full"), ("momentum", "1"), ("rmsprop", "7"))):
        out = tmp_path / f"r{i}"
        code, _, err = run_cli(
            capsys,
            "train",
            "xor:40",
            "--optimizer",
            opt,
            "--batch",
            batch,
            "--val-split",
            "0",
            "--test-split",
            "0",
            "--out",
            out,
            *TINY,
        )
        assert code == 0, err
        metrics = json.loads((out / "metrics.json").read_text())
        per_epoch = {"full": 1, "1": 40, "7": 6}[batch]
        assert metrics["n_updates"] == 2 * per_epoch
        assert set(metrics["splits"]) == {"train"}


# --- config files --------------------------------------------------------------------------------


def test_config_file_sets_options_and_flags_win(capsys, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('data = "moons:60"\nhidden = [5, 3]\nepochs = 3\nbatch = "full"\n'
                      'optimizer = "gd"\nlr = 0.2\nseed = 4\n')  # fmt: skip
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--config", config, "--epochs", "2", "--out", out,
                           "-q", "--no-figures")  # fmt: skip
    assert code == 0, err
    import tomllib

    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["hidden"] == [5, 3] and saved["batch"] == "full" and saved["lr"] == 0.2
    assert saved["epochs"] == 2  # the flag won
    assert saved["loss"] == "binary_cross_entropy" and saved["seed"] == 4
    # A [train] table works too, and its keys win over top-level ones.
    config.write_text('data = "moons:60"\nepochs = 9\n[train]\nepochs = 1\nhidden = "none"\n')
    code, _, err = run_cli(capsys, "train", "--config", config, "--out", out, "-q",
                           "--no-figures", "--force")  # fmt: skip
    assert code == 0, err
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["epochs"] == 1 and saved["hidden"] == []
    assert [p.shape for p in ds.load(out / "model.npz").parameters()] == [(2, 1), (1,)]


def test_the_saved_config_repeats_the_run_exactly(capsys, tmp_path):
    first = tmp_path / "first"
    # No seed: a random one is drawn and recorded.
    code, _, _ = run_cli(capsys, "train", "moons:80", "--epochs", "3", "--hidden", "6",
                         "--out", first, "-q", "--no-figures")  # fmt: skip
    assert code == 0
    second = tmp_path / "second"
    code, _, err = run_cli(capsys, "train", "--config", first / "config.toml", "--out", second,
                           "-q")  # fmt: skip
    assert code == 0, err
    a, b = ds.load(first / "model.npz"), ds.load(second / "model.npz")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert np.array_equal(pa, pb), name
    assert (first / "config.toml").read_text().split("\n", 2)[2] == (
        second / "config.toml"
    ).read_text().split("\n", 2)[2]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("epochz = 3\n", ["unknown key", "epochz", "valid keys", "epochs"]),
        ("epochs = 'many'\n", ["epochs", "whole number"]),
        ("epochs = [\n", ["not valid TOML"]),
        ("hidden = [0]\n", ["hidden", "positive layer sizes"]),
    ],
)
def test_config_file_errors_are_usage_errors(capsys, tmp_path, text, words):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, _, err = run_cli(capsys, "train", "moons", "--config", config)
    assert code == 2
    assert_one_line_error(err, *words)


def test_missing_config_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "moons", "--config", tmp_path / "nope.toml")
    assert code == 1
    assert_one_line_error(err, "nope.toml", "not found")


def test_toml_writer_round_trips_through_tomllib():
    import tomllib

    values = {"a": 0.1, "b": 1e-300, "c": [1, 2], "d": 'quote " and \\ and é', "e": True,
              "f": "full", "g": None, "h": 3}  # fmt: skip
    back = tomllib.loads(dump_toml(values, "header\nline two"))
    assert back == {k: v for k, v in values.items() if v is not None}


# --- errors a person can act on -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["train", "mnist"], 2, ["unknown data", "digits", "breast_cancer", "moons"]),
        (["train", "digitz:0-3"], 2, ["did you mean digits"]),
        (["train", "digits:3-1"], 2, ["backwards"]),
        (["train", "digits:0,0"], 2, ["twice"]),
        (["train", "missing.csv"], 1, ["missing.csv", "not found"]),
        (["train", "digits", "--loss", "mse"], 2, ["mse", "regression", "10 classes"]),
        (["train", "diabetes", "--loss", "categorical_cross_entropy"], 2, ["classification"]),
        (["train", "digits:0-3", "--loss", "binary_cross_entropy"], 2, ["two classes"]),
        (["train", "moons", "--batch", "0"], 2, ["--batch", "full"]),
        (["train", "moons", "--batch", "1000"], 2, ["larger than", "--batch full"]),
        (["train", "moons", "--val-split", "1.5"], 2, ["--val-split", "[0, 1)"]),
        (["train", "moons", "--test-split", "0.6", "--val-split", "0.45"], 2, ["no training"]),
        (["train", "moons", "--lr", "-1"], 2, ["--lr", "greater than 0"]),
        (["train", "moons", "--optimizer", "adm"], 2, ["did you mean adam"]),
        (["train", "moons", "--target", "y"], 2, ["--target", "built-in"]),
        (["train"], 2, ["no data"]),
    ],
)
def test_train_errors_are_one_line_with_the_right_status(capsys, argv, code, words):
    status, _, err = run_cli(capsys, *argv)
    assert status == code
    assert_one_line_error(err, *words)


def test_loss_takes_every_name_the_library_takes(capsys, tmp_path):
    from descend.cli.data import load
    from descend.cli.train import LOSSES, choose_loss

    assert LOSSES == ("auto", *ds.losses.LOSSES)  # one list of names: the library's
    moons, diabetes = load("moons"), load("diabetes")
    for name, fn in ds.losses.LOSSES.items():
        data = diabetes if fn is ds.losses.mse else moons
        assert choose_loss(name, data)[0] == fn.__name__, name
    out = tmp_path / "bce"
    code, _, err = run_cli(capsys, "train", "moons", "--loss", "bce", "--out", out, *TINY)
    assert code == 0, err
    assert 'loss = "binary_cross_entropy"' in (out / "config.toml").read_text()
    # an alias is named as it was typed when it does not fit the task
    code, _, err = run_cli(capsys, "train", "diabetes", "--loss", "cross_entropy", *TINY)
    assert code == 2
    assert_one_line_error(err, "--loss cross_entropy is a classification cost")


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["train", "moons", "--optimizer", "adamx"], "(did you mean adam or adamw?)"),
        (["train", "moons", "--loss", "crossentropy"],
         "(did you mean binary_cross_entropy, categorical_cross_entropy or cross_entropy?)"),
        (["train", "moons", "--activation", "rellu"], "(did you mean relu?)"),
        (["sweep", "moons", "--optimizers", "gd,adamx"], "(did you mean adam or adamw?)"),
    ],
)  # fmt: skip
def test_did_you_mean_names_every_close_choice(capsys, argv, hint):
    status, _, err = run_cli(capsys, *argv)
    assert status == 2
    assert_one_line_error(err, hint)


def test_did_you_mean_names_at_most_three():
    from descend._names import close_names

    choices = ["adam", "adamw", "adamax", "nadam", "radam", "gd"]
    assert len(close_names("adam_", choices)) == 3
    assert close_names("adam_", choices)[0] == "adam"
    assert close_names("zzz", choices) == []


def test_the_library_offers_the_close_names_of_a_cost_or_an_activation():
    # the same helper as the command line's hints
    X, y = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match=r"\(did you mean 'binary_cross_entropy', "
                       r"'categorical_cross_entropy' or 'cross_entropy'\?\)"):  # fmt: skip
        ds.fit(ds.nn.mlp([2, 1], seed=0), X, y, loss="crossentropy", progress=False)
    with pytest.raises(ValueError, match=r"\(did you mean 'relu'"):
        ds.nn.mlp([2, 3, 1], activation="rellu", seed=0)


def test_csv_errors_name_the_column_and_row(capsys, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,x\n3,oops,y\n5,6,x\n")
    code, _, err = run_cli(capsys, "train", path, "--target", "label")
    assert code == 1
    assert_one_line_error(err, "'b'", "'oops'", "row 2", "line 3")
    code, _, err = run_cli(capsys, "train", path, "--target", "price")
    assert code == 2
    assert_one_line_error(err, "no column 'price'", "a, b, label")
    path.write_text("a,b,label\n1,2\n")
    code, _, err = run_cli(capsys, "train", path)
    assert code == 1
    assert_one_line_error(err, "line 2", "2 fields", "3")


def test_divergence_keeps_the_run_and_exits_1(capsys, tmp_path):
    out = tmp_path / "div"
    code, _, err = run_cli(capsys, "train", "diabetes", "--optimizer", "gd", "--lr", "100",
                           "--out", out, *TINY)  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "diverged", "smaller learning rate", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["diverged"] and (out / "model.npz").exists()


def test_debug_shows_the_traceback(capsys):
    code, _, err = run_cli(capsys, "train", "mnist", "--debug")
    assert code == 2
    assert "Traceback" in err and "unknown data" in err


# --- evaluate, predict ---------------------------------------------------------------------------


def test_evaluate_a_saved_run(capsys, digits_run):
    code, out, _ = run_cli(capsys, "evaluate", digits_run, "digits:0-3")
    assert code == 0
    assert "720" in out and "accuracy" in out


def test_predict_to_stdout(capsys, digits_run, tmp_path):
    X, _ = ds.datasets.digits(classes=(2,))
    np.save(tmp_path / "twos.npy", X[:5])
    code, out, _ = run_cli(capsys, "predict", digits_run, tmp_path / "twos.npy", "-o", "-")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("prediction,p_0") and len(lines) == 6


def test_evaluate_and_predict_errors(capsys, digits_run, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "nowhere", "digits:0-3")
    assert code == 1
    assert_one_line_error(err, "not found", "descend train")
    code, _, err = run_cli(capsys, "evaluate", tmp_path, "digits:0-3")
    assert code == 1
    assert_one_line_error(err, "not a run folder")
    code, _, err = run_cli(capsys, "evaluate", digits_run, "digits:0-4")
    assert code == 1
    assert_one_line_error(err, "label 4", "knows 0, 1, 2, 3")
    code, _, err = run_cli(capsys, "evaluate", digits_run, "moons")
    assert code == 1
    assert_one_line_error(err, "2 features", "64")
    np.save(tmp_path / "wide.npy", np.zeros((3, 70)))
    code, _, err = run_cli(capsys, "predict", digits_run, tmp_path / "wide.npy")
    assert code == 1
    assert_one_line_error(err, "70 columns", "64 features")


# --- inspect, gradcheck --------------------------------------------------------------------------


def test_inspect_prints_every_layer_and_writes_a_folder(capsys, digits_run, tmp_path):
    out = tmp_path / "inspect"
    code, stdout, err = run_cli(capsys, "inspect", digits_run, "--sample", "5", "--out", out)
    assert code == 0, err
    assert "sample 5 of digits:0-3" in stdout
    assert "layer 0: 64 -> 8, relu" in stdout and "layer 1: 8 -> 4, softmax" in stdout
    for column in ("dC/dz", "dC/db", "|dC/dW|", "|dC/da_in|"):
        assert column in stdout
    record = json.loads((out / "inspect.json").read_text())
    assert len(record["layers"]) == 2
    assert np.array(record["layers"][0]["dC_dW"]).shape == (64, 8)
    assert (out / "report.html").exists()
    assert (out / "network.png").exists() and (out / "backprop.png").exists()


def test_inspect_sample_out_of_range(capsys, digits_run):
    code, _, err = run_cli(capsys, "inspect", digits_run, "--sample", "5000")
    assert code == 2
    assert_one_line_error(err, "--sample 5000", "0 to 719")


def test_gradcheck_passes_on_a_run_and_on_a_bare_model(capsys, digits_run):
    code, out, _ = run_cli(capsys, "gradcheck", digits_run, "--samples", "3")
    assert code == 0
    assert "gradcheck OK" in out and "worst relative error" in out and "556 partial" in out
    code, out, _ = run_cli(capsys, "gradcheck", digits_run / "model.npz", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_gradcheck_failure_exits_1(capsys, digits_run):
    code, out, err = run_cli(capsys, "gradcheck", digits_run, "--rtol", "1e-30", "--atol", "0")
    assert code == 1
    assert "FAILED" in out
    assert_one_line_error(err, "disagree")


def test_gradcheck_missing_model(capsys, tmp_path):
    code, _, err = run_cli(capsys, "gradcheck", tmp_path / "m.npz")
    assert code == 1
    assert_one_line_error(err, "not found")


# --- the installed entry points ------------------------------------------------------------------


def test_python_dash_m_descend_and_the_console_script():
    import shutil
    import subprocess
    from pathlib import Path

    done = subprocess.run([sys.executable, "-m", "descend", "train", "nothing"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "unknown data 'nothing'" in done.stderr and not done.stdout
    script = Path(sys.executable).parent / "descend"
    script = str(script) if script.exists() else shutil.which("descend")
    if script is None:
        pytest.skip("the descend console script is not installed (pip install -e .)")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and ds.__version__ in done.stdout


# --- compare, surface, landscape -----------------------------------------------------------------


def test_compare_writes_table_figures_and_report(capsys, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, err = run_cli(capsys, "compare", "xor:80", "--batches", "full,8,1",
                                "--epochs", "2", "--seeds", "0,1", "--hidden", "4",
                                "--out", out)  # fmt: skip
    assert code == 0, err
    assert "| variant |" in stdout and "stochastic (b=1)" in stdout and "report.html" in stdout
    result = json.loads((out / "comparison.json").read_text())
    updates = {row["variant"]: row["updates"] for row in result["summary"]}
    assert updates == {"batch (b=60)": 2, "mini-batch (b=8)": 16, "stochastic (b=1)": 120}
    assert {"comparison.md", "config.toml", "report.html", "curves.png", "tradeoff.png"} <= {
        p.name for p in out.iterdir()
    }
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2


def test_compare_errors(capsys, tmp_path):
    code, _, err = run_cli(capsys, "compare", "moons", "--batches", "full,full")
    assert code == 2
    assert_one_line_error(err, "same variant twice")
    code, _, err = run_cli(capsys, "compare", "moons", "--seeds", "a,b")
    assert code == 2
    assert_one_line_error(err, "--seeds", "whole numbers")
    code, _, err = run_cli(capsys, "compare", "moons:40", "--batches", "500")
    assert code == 2
    assert_one_line_error(err, "larger than")


def test_surface_line_and_camel(capsys, tmp_path):
    code, out, err = run_cli(capsys, "surface", "--batches", "full,64", "--epochs", "2",
                             "--no-html", "--out", tmp_path / "line")  # fmt: skip
    assert code == 0, err
    assert "batch (b=442)" in out and "mini-batch (b=64)" in out and "least squares" in out
    record = json.loads((tmp_path / "line" / "surface.json").read_text())
    assert len(record["paths"]["mini-batch (b=64)"]) == 2 * 7 + 1  # the start + one per update
    assert (tmp_path / "line" / "surface.png").stat().st_size > 10_000
    code, out, err = run_cli(capsys, "surface", "--problem", "camel", "--batches", "full,1",
                             "--lrs", "0.05", "--starts", "6", "--steps", "30",
                             "--out", tmp_path / "camel")  # fmt: skip
    assert code == 0, err
    assert "global" in out and (tmp_path / "camel" / "minima_lr0.05.png").exists()


def test_surface_errors(capsys):
    code, _, err = run_cli(capsys, "surface", "--start", "1")
    assert code == 2
    assert_one_line_error(err, "--start", "w,b")
    code, _, err = run_cli(capsys, "surface", "--problem", "hills")
    assert code == 2
    assert_one_line_error(err, "invalid choice", "line", "camel")


def test_landscape_of_a_run(capsys, digits_run, tmp_path):
    out = tmp_path / "land"
    code, stdout, err = run_cli(capsys, "landscape", digits_run, "--resolution", "5",
                                "--out", out)  # fmt: skip
    assert code == 0, err
    assert "variance explained by the plane" in stdout
    record = json.loads((out / "landscape.json").read_text())
    metrics = json.loads((digits_run / "metrics.json").read_text())
    # The plane passes through the final weights: its centre is the training loss of the run.
    assert record["cost at the final weights"] == pytest.approx(
        metrics["splits"]["train"]["loss"], rel=1e-5
    )
    assert np.array(record["losses"]).shape == (5, 5)
    assert (out / "landscape.png").exists() and (out / "report.html").exists()
    code, _, err = run_cli(capsys, "landscape", digits_run, "--resolution", "1")
    assert code == 2
    assert_one_line_error(err, "--resolution")


def test_sweep_takes_its_update_rules_as_a_toml_array_or_comma_separated(tmp_path):
    counts = {}
    for form in ('["gd", "adam"]', '"gd,adam"'):
        config = tmp_path / "sweep.toml"
        config.write_text(f'data = "moons"\nhidden = [4]\nlrs = [0.1]\nbatches = ["full"]\n'
                          f"optimizers = {form}\nepochs = 2\nfigures = false\n")  # fmt: skip
        out = tmp_path / f"run{len(counts)}"
        assert main(["sweep", str(config), "--out", str(out)]) == 0
        rows = json.loads((out / "sweep.json").read_text())["rows"]
        counts[form] = sorted(str(row["optimizer"]) for row in rows)
        saved = (out / "config.toml").read_text()
        assert 'optimizers = ["gd", "adam"]' in saved  # and the run folder's config reads back
    assert counts['["gd", "adam"]'] == counts['"gd,adam"'] == ["adam", "gd"]
