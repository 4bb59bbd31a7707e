"""Messages whose fix can be applied, and the consistency a user expects between front ends."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import descend as ds


@pytest.fixture(scope="module")
def moons():
    return ds.datasets.moons(40, seed=0)


def test_fit_on_logits_says_what_fit_can_do(moons):
    X, y = moons
    with pytest.raises(ValueError) as err:
        ds.fit(ds.nn.mlp([2, 4, 2], seed=0), X, y, loss="categorical_cross_entropy",
               progress=False)  # fmt: skip
    text = str(err.value)
    assert 'output_activation="softmax"' in text  # what fit can use; fit has no from_logits
    assert "calling the cost yourself" in text


def test_binary_cost_on_logits_names_the_sigmoid(moons):
    X, y = moons
    with pytest.raises(ValueError, match='output_activation="sigmoid"'):
        ds.losses.binary_cross_entropy(np.array([-2.0, 3.0]), np.array([0, 1]))


def test_categorical_cost_on_one_sigmoid_unit_gives_advice_that_works(moons):
    X, y = moons
    with pytest.raises(ValueError) as err:
        ds.fit(ds.nn.mlp([2, 4, 1], output_activation="sigmoid", seed=0), X, y,
               loss="categorical_cross_entropy", progress=False)  # fmt: skip
    text = str(err.value)
    assert "1 outputs" not in text and "0..0" not in text
    assert "binary_cross_entropy" in text and "2 units" in text
    # and the advice works: both fixes train
    for model, loss in [
        (ds.nn.mlp([2, 4, 1], output_activation="sigmoid", seed=0), "binary_cross_entropy"),
        (ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0), "categorical_cross_entropy"),
    ]:
        ds.fit(model, X, y, loss=loss, progress=False)


def test_labels_out_of_range_offer_renumbering_only_when_it_can_work():
    pred = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"renumber the classes 0\.\.2, or give the last layer 6"):
        ds.losses.categorical_cross_entropy(pred, np.array([0, 1, 5]))
    with pytest.raises(ValueError) as err:
        ds.losses.categorical_cross_entropy(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 3]))
    assert "renumber" not in str(err.value)  # four classes do not fit three outputs
    assert "give the last layer 4 units" in str(err.value)


def test_divergence_on_an_unscaled_regression_target_names_the_target():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = 150 + 77 * (X @ rng.standard_normal(5))  # raw diabetes-like scale
    with np.errstate(all="ignore"), pytest.raises(ds.DivergenceError) as err:
        ds.fit(ds.nn.mlp([5, 16, 1], seed=0), X, y, loss="mse", optimizer=ds.optim.GD(0.1),
               epochs=5, progress=False)  # fmt: skip
    assert "the targets y" in str(err.value)


def test_cli_loss_typo_offers_the_cross_entropy_that_fits_three_classes(capsys):
    from descend.cli import main

    code = main(["train", "moons", "--loss", "crossentropy", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    # every cost whose name holds the typo, in the order --loss lists them (aliases included)
    offered = "did you mean binary_cross_entropy, categorical_cross_entropy or cross_entropy?"
    assert offered in err


def test_sklearn_without_scikit_learn_names_the_extra():
    # A child process where importing scikit-learn fails as it does when it is not installed.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sklearn' or name.startswith('sklearn.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'sklearn'\", name='sklearn')\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import descend.sklearn\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert 'pip install "descend[datasets]"' in out.stdout, out.stdout + out.stderr


def test_negative_zero_is_printed_as_zero():
    from descend.cli.report import format_number

    assert format_number(-0.0) == "0"
    assert format_number(np.float32(-0.0)) == "0"
    assert format_number(-0.00012) == "-0.00012"


def test_load_takes_the_name_save_was_given(tmp_path):
    model = ds.nn.mlp([2, 3, 1], seed=0)
    written = ds.save(model, tmp_path / "m")
    assert written.name == "m.npz"
    loaded = ds.load(tmp_path / "m")
    x = np.ones((1, 2))
    np.testing.assert_array_equal(ds.predict(loaded, x), ds.predict(model, x))
    # a file of exactly the given name still wins
    other = tmp_path / "plain"
    ds.save(ds.nn.mlp([2, 1], seed=1), tmp_path / "plain.npz").rename(other)
    assert ds.load(other).layers[0].in_features == 2


def test_backprop_and_network_take_one_sample_the_same_way():
    X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    model = ds.nn.mlp([64, 8, 4], output_activation="softmax", seed=0)
    ds.viz.network(model, X[0])
    by_label = ds.viz.backprop(model, X[0], y[0], "categorical_cross_entropy")
    by_row = ds.viz.backprop(model, X[:1], y[:1], "categorical_cross_entropy")
    assert by_label.axes[0].get_title() == by_row.axes[0].get_title()  # the same cost
    one_hot = ds.viz.backprop(model, X[0], np.eye(4)[y[0]], "categorical_cross_entropy")
    assert one_hot.axes[0].get_title() == by_row.axes[0].get_title()
    regression = ds.nn.mlp([64, 8, 1], seed=0)
    ds.viz.backprop(regression, X[0], 0.5, "mse")


def test_command_line_accepts_every_update_rule_of_the_library():
    from descend.cli.train import DEFAULT_LR, OPTIMIZERS
    from descend.optim.registry import _NAMES

    assert set(OPTIMIZERS) == set(_NAMES) == set(DEFAULT_LR)


@pytest.mark.parametrize("name", ["nesterov", "adamw"])
def test_train_runs_with_nesterov_and_adamw(name, tmp_path, capsys):
    from descend.cli import main

    out = tmp_path / name
    code = main(["train", "xor:80", "--optimizer", name, "--epochs", "1", "--hidden", "4",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    assert f'optimizer = "{name}"' in (out / "config.toml").read_text()


def test_network_activations_never_share_a_colour_with_negative_weights():
    import matplotlib.colors as mcolors

    from descend.viz._common import NEGATIVE

    X, _ = ds.datasets.digits(classes=(0, 1, 2, 3))
    model = ds.nn.mlp([64, 8, 4], output_activation="softmax", seed=0)
    fig = ds.viz.network(model, X[0])
    ax = fig.axes[0]
    orange = np.array(mcolors.to_rgb(NEGATIVE))
    for nodes in ax.collections[len(model.layers) :]:  # the node scatters, after the edges
        rgb = nodes.get_facecolors()[:, :3]
        # grey nodes: red, green and blue equal; nowhere near the negative-weight orange
        np.testing.assert_allclose(rgb[:, 0], rgb[:, 2], atol=1e-6)
        assert np.all(np.abs(rgb - orange).sum(axis=1) > 0.3)
    assert len(fig.axes) == 2 and "activation" in fig.axes[1].get_ylabel()  # a colour bar
    assert sum(t.get_text().startswith("max ") for t in ax.texts) == 3  # each column's scale


def test_backprop_shows_magnitudes_not_only_signs():
    X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    model = ds.nn.mlp([64, 8, 4], output_activation="softmax", seed=0)
    fig = ds.viz.backprop(model, X[0], y[0], "categorical_cross_entropy")
    view = ds.backprop(model, X[:1], y[:1], "categorical_cross_entropy")
    widest = [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("widest")]
    assert len(widest) == 2
    largest = float(np.abs(view.layers[-1].dC_dW).max())
    assert f"{largest:.2g}" in widest[-1]
    assert "dC/da" in fig.axes[1].get_ylabel()  # the colour bar of the nodes


def test_the_readme_table_of_defaults_is_what_the_front_ends_do():
    import inspect
    from pathlib import Path

    from descend.cli import compare as compare_cmd
    from descend.cli import train as train_cmd
    from descend.sklearn import MLPClassifier, MLPRegressor

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {}
    section = readme.split("### Defaults of the four front ends", 1)[1].split("Why:", 1)[0]
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] and not cells[0].startswith("---"):
            rows[cells[0]] = cells[1:]
    fit = {k: v.default for k, v in inspect.signature(ds.fit).parameters.items()}
    train = {o.key: o.default for o in train_cmd.OPTIONS}
    compare = {o.key: o.default for o in compare_cmd.OPTIONS}
    for est in (MLPClassifier, MLPRegressor):
        params = est().get_params()
        assert rows["update rule"][3] == params["optimizer"]
        assert rows["learning rate"][3] == str(params["learning_rate_init"])
        assert rows["epochs"][3] == str(params["epochs"])
        assert params["batch_size"] == "auto" and est()._batch(10_000) == 200
    assert rows["update rule"][:3] == [fit["optimizer"], train["optimizer"], compare["optimizer"]]
    assert fit["lr"] is None and "GD`: 0.01" in rows["learning rate"][0]
    assert ds.optim.GD().lr == 0.01
    assert rows["learning rate"][1].startswith(str(train_cmd.DEFAULT_LR[train["optimizer"]]))
    assert rows["learning rate"][2] == str(train_cmd.DEFAULT_LR[compare["optimizer"]])
    assert rows["epochs"][:3] == [str(fit["epochs"]), str(train["epochs"]), str(compare["epochs"])]
    assert rows["batch size"][0] == str(fit["batch_size"]) == str(train["batch"])
    assert compare["batches"] == ["full", 32, 1] and compare["seeds"] == [0, 1, 2]
    assert fit["seed"] is None and train["seed"] is None
