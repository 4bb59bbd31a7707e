"""Data handling: batching (the three gradient-descent variants), splits, standardisation.

- :func:`batches` / :class:`Batches`: ``batch_size="full"`` (batch GD), ``1`` (stochastic GD),
  ``k`` (mini-batch GD); each iteration is one epoch, reshuffled when ``shuffle=True``.
- :func:`train_test_split`: hold-out split, optionally stratified by class.
- :class:`Standardizer` / :func:`standardize`: mean 0, standard deviation 1 per feature.
- :func:`check_X_y`, :func:`check_array`, :func:`as_generator`: input checks with clear errors.
"""

from descend.data.batching import Batches, batches
from descend.data.scaling import NotFittedError, Standardizer, standardize
from descend.data.split import train_test_split
from descend.data.validation import as_generator, check_array, check_batch_finite, check_X_y

__all__ = [
    "Batches",
    "NotFittedError",
    "Standardizer",
    "as_generator",
    "batches",
    "check_X_y",
    "check_array",
    "check_batch_finite",
    "standardize",
    "train_test_split",
]
