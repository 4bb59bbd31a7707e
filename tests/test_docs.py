"""The documentation: every code block of the guide and the README runs, the numbers the text
quotes come from that code, and the site builds with ``mkdocs build --strict``.

The pages run through ``docs/hooks.py``, the same code that the MkDocs build uses. Each page runs
in order, in its own temporary working directory.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load_hooks():
    spec = importlib.util.spec_from_file_location("descend_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()

EXECUTED_PAGES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.md")
    if hooks.is_executed(p.relative_to(DOCS).as_posix())
)
GUIDE_CHAPTERS = [p for p in EXECUTED_PAGES if re.match(r"guide/\d\d-", p)]


# What the prose of each page says about its numbers, beyond quoting them: checked here, so that
# a change in descend that makes a sentence false fails the tests.


def _neuron(ns):
    assert ns["a_by_descend"] == ns["a_by_hand"], "by hand and by descend, the same number"
    assert np.allclose(ns["by_descend"], ns["by_hand"]), "the layer is the hand computation"


def _network(ns):
    assert ns["p_after"].argmax() == 3, "the trained network takes the 3 for a 3"
    assert ns["p_after"][3] > ns["p_before"][3], "training raised the belief in 3"


def _costs(ns):
    sq = (ns["predicted"] - ns["target"]) ** 2
    assert sq[3] > sq[:3].sum(), "the last prediction contributes more than the other three"
    assert ns["per_sample"].argmax() == 2, "the third sample costs the most"
    assert abs(ns["slope_ce"]) > 10 * abs(ns["slope_se"]), "the cross-entropy's slope is steeper"
    two = ns["ds"].losses.categorical_cross_entropy(ns["two_columns"], ns["y"]).item()
    assert np.isclose(two, ns["bce"]), "two columns give the binary cross-entropy"


def _gradient_descent(ns):
    cost, paths = ns["problem"].cost, ns["paths"]
    assert np.abs(ns["path_fit"] - ns["path"]).max() < 1e-12, "ds.fit is the hand-written loop"
    assert 0.8 < ns["limit"] < 1.0, "0.02 and 0.8 are below the limit 2/λ, 1.0 above"
    small, right = paths["too small (lr=0.02)"][-1], paths["right (lr=0.8)"][-1]
    assert cost(*small) > cost(*right) + 0.1, "the small rate is still far from the minimum"
    grows = np.diff(cost(ns["too_large"][:, 0], ns["too_large"][:, 1]))
    assert (grows > 0).all(), "above the limit the cost grows with every step"
    finite = all(np.isfinite(p.data).all() for p in ns["model"].parameters())
    assert ns["diverged"].step > 0 and finite, "fit stops and keeps finite parameters"
    losses = ns["diverged"].history.step["loss"]
    assert (np.diff(losses) > 0).all() and 0.4 < losses[-1] / losses[-2] - 1 < 0.6, "about half"
    assert ns["diverged"].value > 1e4 * losses[0], "stopped when far above the start"
    kept = [p.data.item() for p in ns["model"].parameters()]
    assert max(map(abs, kept)) < 100, "the parameters from before the cost took off"


def _backprop(ns):
    assert ns["largest_gap"] < 1e-12, "the chain rule by hand is descend's"
    assert ns["check"].ok, "gradcheck passes"
    error = ns["dC_dz2"][0]
    assert error[3] < 0 and (np.delete(error, 3) > 0).all(), "only the 3 has a negative error"
    assert ns["trainer"].executor == "eager", "the step shown is the eager one"
    assert abs(ns["step_cost"] - ns["view"].cost) < 1e-12, "the step's cost is the view's"


def _variants(ns):
    cost, paths = ns["problem"].cost, ns["paths"]
    final = [
        cost(*paths[k][-1]) for k in ("batch (b=442)", "mini-batch (b=32)", "stochastic (b=1)")
    ]
    assert final[0] > final[1] > final[2], "after 10 epochs: batch furthest, then mini-batch"
    batch, mini, sgd = ns["batch"], ns["mini"], ns["sgd"]
    assert batch["test accuracy"][0] < mini["test accuracy"][0], "batch GD is behind"
    assert sgd["wall time (s)"][0] > mini["wall time (s)"][0], "SGD takes longer than mini-batch"
    assert ns["sgd_global"] > ns["batch_global"] + 0.2, "SGD finds the global minimum more often"
    assert abs(ns["batch_global"] - ns["batch_small_lr"]) < 0.1, "batch GD: the rate hardly matters"
    assert abs(ns["sgd_small_lr"] - ns["batch_small_lr"]) < 0.1, "at lr=0.01 SGD is like batch GD"


def _optimizers(ns):
    gap = ns["gap"]
    assert gap["Nesterov (lr=0.1, μ=0.9)"] < gap["GD (lr=0.8)"], "Nesterov ends closer than GD"
    assert gap["Adam (lr=0.3)"] < 1e-3, "Adam settles"
    assert gap["RMSProp (lr=0.05)"] > 1e-2, "RMSProp falls short"
    assert ns["slowest"] == "GD (lr=0.1)", "plain GD has the highest training loss on the digits"
    sgd_gap = ns["sgd_gap"]
    assert all(
        v < sgd_gap["constant 0.1"] for v in sgd_gap.values() if v != sgd_gap["constant 0.1"]
    )


def _shell_and_sklearn(ns):
    assert ns["scores"].mean() > 0.9, "the estimator learns"


def _cluster(ns):
    assert ns["gap"] < 1e-12, "the shards' sums are the one-machine gradient"
    assert ns["largest"] < 1e-10, "on 2 and 3 workers, the weights of one machine"
    assert ns["sgd_ray"] > 2 * ns["sgd_alone"], "SGD is slower on Ray than alone"


def _playground(ns):
    assert ns["same"], "the playground's costs are ds.fit's"
    batch, mini, sgd = ns["batch"], ns["mini"], ns["sgd"]
    assert mini["curve"][-1]["loss"] < batch["curve"][-1]["loss"], "mini-batch ends lower"
    assert sgd["time"] > mini["time"], "SGD takes longer than mini-batch"
    at_01, at_02 = ns["at_01"], ns["at_02"]
    alike = [v["global"] for v in ns["shares"][0.05].values()]
    assert max(alike) - min(alike) < 0.1, "at lr=0.05 the variants end alike"
    assert at_01["stochastic (b=1)"]["global"] > at_01["batch (b=100)"]["global"] + 0.2
    assert at_02["stochastic (b=1)"]["diverged"] > 0.5, "at lr=0.2 SGD mostly diverges"


CLAIMS = {
    "guide/01-neuron.md": _neuron,
    "guide/02-network.md": _network,
    "guide/03-cost-functions.md": _costs,
    "guide/04-gradient-descent.md": _gradient_descent,
    "guide/05-backpropagation.md": _backprop,
    "guide/06-batch-stochastic-mini-batch.md": _variants,
    "guide/07-optimizers.md": _optimizers,
    "guide/08-cli-and-sklearn.md": _shell_and_sklearn,
    "guide/09-cluster.md": _cluster,
    "guide/10-playground.md": _playground,
}

# The page that starts a local Ray runs with the cluster tests (one Ray per test process).
_RAY_PAGES = {"guide/09-cluster.md"}


def _page_param(page: str):
    if page in _RAY_PAGES:
        return pytest.param(page, marks=pytest.mark.xdist_group("ray"))
    return page


def _run(page: str, tmp_path: Path):
    text = (DOCS / page).read_text(encoding="utf-8")
    return hooks.run_page(text, page, workdir=tmp_path)


@pytest.mark.parametrize("page", [_page_param(p) for p in EXECUTED_PAGES])
def test_page_code_runs(page, tmp_path):
    if page in _RAY_PAGES:
        pytest.importorskip("ray")
    result = _run(page, tmp_path)
    if page in CLAIMS:
        CLAIMS[page](result.namespace)
    assert "{{" not in hooks.prose(result.markdown)


def test_readme_code_runs(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert hooks.runnable_blocks(text), "the README has a Python example"
    result = hooks.run_page(text, "README.md", workdir=tmp_path)
    assert result.blocks_run >= 1


def test_every_chapter_of_the_issue_is_there():
    assert len(GUIDE_CHAPTERS) >= 10
    assert set(GUIDE_CHAPTERS) == set(CLAIMS)
    for page in GUIDE_CHAPTERS:
        assert hooks.runnable_blocks((DOCS / page).read_text(encoding="utf-8")), page


# A decimal with two or more digits after the point, typed into the prose of a guide page, is a
# result typed by hand (settings such as lr=0.01 go in `code`); results come from {{ fields }}.
_TYPED_NUMBER = re.compile(r"(?<![\w.])\d+\.\d{2,}(?![\w.])")


@pytest.mark.parametrize("page", EXECUTED_PAGES)
def test_no_number_typed_by_hand(page):
    text = hooks.prose((DOCS / page).read_text(encoding="utf-8"))
    text = hooks.FIELD.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    typed = _TYPED_NUMBER.findall(text)
    assert not typed, f"{page} quotes {typed} by hand; compute them and use {{{{ ... }}}}"


def test_runner_reports_failures_with_page_and_line(tmp_path):
    page = "Some text.\n\n```python\nx = 1\nraise ValueError('boom')\n```\n"
    with pytest.raises(hooks.DocsCodeError, match=r"p\.md:4") as info:
        hooks.run_page(page, "p.md", workdir=tmp_path)
    assert 'p.md", line 5' in str(info.value) and "boom" in str(info.value)
    with pytest.raises(hooks.DocsCodeError, match=r"p\.md:1: \{\{ y \}\}"):
        hooks.run_page("{{ y }}\n", "p.md", workdir=tmp_path)


def test_runner_inserts_output_values_and_figures(tmp_path):
    page = (
        "# t\n\n```python\nimport matplotlib.figure\nx = 2.5\nprint('x is', x)\n"
        "fig = matplotlib.figure.Figure()\nfig.savefig('a plot.png')\n```\n\n"
        "x squared is {{ x ** 2:.2f }}.\n\n```sh\nnot run\n```\n"
    )
    result = hooks.run_page(page, "t.md", workdir=tmp_path, figure_dir="figures/t")
    assert '```text title="output"\nx is 2.5\n```' in result.markdown
    assert "x squared is 6.25." in result.markdown
    assert "![a plot](figures/t/a plot.png)" in result.markdown
    assert "```sh\nnot run\n```" in result.markdown
    assert list(result.figures) == ["figures/t/a plot.png"]
    assert result.figures["figures/t/a plot.png"].startswith(b"\x89PNG")


def test_console_blocks_run_the_descend_command(tmp_path):
    page = "```console\n$ descend datasets \\\n    --names\n```\n"
    result = hooks.run_page(page, "c.md", workdir=tmp_path)
    assert "$ descend datasets \\\n    --names\ndigits\n" in result.markdown
    with pytest.raises(hooks.DocsCodeError, match="exited with status"):
        hooks.run_page("```console\n$ descend train no-such-data\n```\n", "c.md", workdir=tmp_path)


def _public_names() -> list[tuple[str, str, str]]:
    """(package, name, the object's own name) of every public function and class."""
    packages = ["descend", "descend.autodiff", "descend.nn", "descend.losses", "descend.optim",
                "descend.data", "descend.train", "descend.viz", "descend.experiments",
                "descend.sklearn", "descend.compile", "descend.cluster",
                "descend.playground"]  # fmt: skip
    names = []
    for package in packages:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            # Tables of built-ins (LOSSES, ...) and type aliases are data, not API to document.
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names.append((package, name, obj.__name__))
    return names


def test_strict_build(tmp_path):
    """``mkdocs build --strict`` passes, the guide's figures are in the site, and the reference
    documents every public name (an anchor per name, from the docstrings)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]

    chapter = (site / "guide" / "02-network.html").read_text(encoding="utf-8")
    assert 'src="figures/02-network/network-trained.png"' in chapter
    assert (site / "guide" / "figures" / "02-network" / "network-trained.png").stat().st_size > 0
    assert "{{" not in chapter

    ids = set()
    for page in (site / "reference").glob("*.html"):
        ids |= set(re.findall(r'id="(descend\.[\w.]+)"', page.read_text(encoding="utf-8")))
    documented = {i.rsplit(".", 1)[-1] for i in ids}
    # Re-exported names are documented where they are defined (ds.fit as descend.train.fit), and
    # aliases under their own name (SGD as GD).
    missing = [
        f"{package}.{name}"
        for package, name, own in _public_names()
        if f"{package}.{name}" not in ids and name not in documented and own not in documented
    ]
    assert not missing, f"not in the reference: {missing}"
    # The names of DESIGN.md, each on its page with its own anchor.
    for anchor in [
        "descend.Tensor", "descend.Tensor.backward", "descend.grad", "descend.value_and_grad",
        "descend.gradcheck", "descend.no_grad", "descend.nn.Dense", "descend.nn.Sequential",
        "descend.nn.Module.named_parameters", "descend.nn.Module.zero_grad",
        "descend.losses.mse", "descend.losses.binary_cross_entropy",
        "descend.losses.categorical_cross_entropy", "descend.losses.log_loss",
        "descend.optim.GD", "descend.optim.Momentum", "descend.optim.RMSProp", "descend.optim.Adam",
        "descend.optim.AdamW", "descend.optim.Optimizer.step", "descend.data.batches",
        "descend.train.fit", "descend.train.History", "descend.train.evaluate",
        "descend.train.predict", "descend.backprop.backprop", "descend.io.save", "descend.io.load",
    ]:  # fmt: skip
        assert anchor in ids, anchor
