"""``--workers N [--address HOST:PORT]``: the options that put a command's work on Ray.

Shared by ``descend train`` (data-parallel training), ``descend compare`` and ``descend sweep``
(runs as Ray tasks). Ray is the optional ``ray`` extra; without ``--workers`` nothing needs it.
"""

from __future__ import annotations

from descend.cli.errors import UsageError
from descend.cli.options import Option

RAY_EXTRA = "needs the ray extra: pip install 'descend[ray]'"

CLUSTER_OPTIONS = (
    Option("workers", "int", None, f"run on Ray with N workers ({RAY_EXTRA}); default: this "
           "process only", metavar="N", saved=False),
    Option("address", "str", None, "the Ray cluster to use, HOST:PORT of its head node "
           "(default: a local Ray instance started for the run; with --workers)",
           metavar="HOST:PORT", saved=False),
)  # fmt: skip


def cluster_from(values: dict):
    """A :class:`descend.cluster.Ray` from ``--workers``/``--address``, or None without them.

    Connected at once, so that an address that does not answer is reported before any folder
    is written."""
    if values.get("workers") is None:
        if values.get("address"):
            raise UsageError("--address needs --workers N (how many Ray workers to use)")
        return None
    from descend import cluster

    ray = cluster.Ray(workers=values["workers"], address=values.get("address"))
    ray.connect()
    return ray


__all__ = ["CLUSTER_OPTIONS", "RAY_EXTRA", "cluster_from"]
