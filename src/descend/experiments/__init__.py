"""Experiments: the textbook's claims about gradient descent, measured."""

from descend.experiments.landscape import LossPlane, loss_plane
from descend.experiments.minima import LocalMinimaResult, local_minima
from descend.experiments.problems import (
    TwoParameterProblem,
    camel_problem,
    descent_paths,
    line_problem,
    variant_label,
)
from descend.experiments.sweep import SweepResult, grid_sweep, run_many
from descend.experiments.variants import VariantComparison, VariantRun, compare_variants, loss_noise

__all__ = [
    "LocalMinimaResult", "LossPlane", "SweepResult", "TwoParameterProblem", "VariantComparison",
    "VariantRun", "camel_problem", "compare_variants", "descent_paths", "grid_sweep",
    "line_problem", "local_minima", "run_many",
    "loss_noise", "loss_plane", "variant_label",
]  # fmt: skip
