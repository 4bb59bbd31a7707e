"""Gradient descent beyond one machine, on Ray: the same descent, spread over workers.

The gradient of a batch is a sum over its rows, so it can be computed where the rows are: each
worker holds a shard of the data and returns the summed cost and gradients over its rows of the
batch; the driver adds the sums in a fixed order, divides by the batch size (the cost's mean)
and takes the step with the usual optimizer. ``ds.fit(..., cluster=ds.cluster.Ray(workers=4))``
runs that; :meth:`Ray.map` runs independent trainings (sweeps) as Ray tasks.

Needs the optional ``ray`` package: ``pip install 'descend[ray]'``.
"""

from descend.cluster.ray import ClusterError, DataParallel, Ray

__all__ = ["ClusterError", "DataParallel", "Ray"]
