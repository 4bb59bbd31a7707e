"""Ray as the engine: a local instance started on demand, or a cluster at an address.

Two uses, one object (:class:`Ray`):

* data-parallel gradient descent (:class:`DataParallel`): each worker is a Ray actor holding a
  shard of the data (:class:`~descend.cluster.worker.ShardWorker`); every update sends the
  parameters as one flat vector, once for all the workers, with each worker's rows of the batch,
  and adds the flat gradient sums they return in worker order. After the first updates of a run
  the messages go through a Ray Compiled Graph (shared-memory channels set up once, about a
  millisecond per update instead of several for two remote calls and the object store); a
  worker that dies tears the graph down, the update is done again by plain actor calls (Ray
  restarts the worker, which reloads its shard) and the graph is compiled again;
* many independent runs (:meth:`Ray.map`): each run is a Ray task.

Ray is imported only when one of these starts, so ``import descend`` never needs it.
"""

from __future__ import annotations

import logging
import os
import socket
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from descend.cluster.worker import Layout, ShardWorker
from descend.compile.backend import split_rows
from descend.nn.module import Module

RAY_HINT = "install it with: pip install 'descend[ray]'"
INLINE_BYTES = 64 << 10
"""Parameters up to this size go to the workers inside each call (no round trip through Ray's
object store); larger ones are put into the store once per update and read by every worker."""
MAP_SHARE = 2
""":meth:`Ray.map` sends its runs in batches that shrink as the runs are handed out: each takes
``1 / (MAP_SHARE * workers)`` of the runs not yet in a batch (at least one), so there are few
tasks, and the last ones, single runs, even out the workers' ends."""
GRAPH_TRIAL = 10
"""With ``compiled_graph=None``, the graph is kept only if the median time of its first
``GRAPH_TRIAL`` updates (after the one that compiled it) is at most that of the last
``GRAPH_TRIAL`` updates by calls."""
GRAPH_MAX_UPDATE = 0.1
"""With ``compiled_graph=None``, the graph is tried only if the updates by calls take less than
this (seconds, median): a longer one is mostly its computation, which the graph does not
shorten, while its spinning waits take CPU from the workers (on one machine: 30-40% slower
updates of 150 ms with 2 workers on 2 cores)."""
GRAPH_AFTER = 20
"""With ``compiled_graph=None``, the updates of a run made by plain actor calls before the Ray
Compiled Graph is set up (compiling it takes 0.2-0.5 s, which a run of a few updates would not
win back)."""

log = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """The cluster could not be reached, or its workers could not start (the message says which).

    Examples
    --------
    >>> issubclass(ClusterError, RuntimeError)
    True
    """


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(f"descend.cluster.Ray needs the ray package; {RAY_HINT}") from None
    return ray


class Ray:
    """Where to run: a local Ray instance (``address=None``) or a Ray cluster at an address.

    The constructor only stores its arguments; Ray starts (or is connected to) when a training
    or a sweep first needs it, and stays up for the rest of the process (a Ray instance that is
    already running in this process is used as it is).

    Parameters
    ----------
    workers : int, default 4
        Data-parallel training: how many shards (one Ray actor each). Sweeps: how many runs
        at a time.
    address : str, optional
        ``None`` starts a local instance with this machine's cores; ``"HOST:PORT"`` (the head
        node's GCS port, 6379 by default), ``"ray://HOST:10001"`` (Ray Client) or ``"auto"``
        connects to a running cluster.
    cpus_per_worker : float, optional
        CPUs each worker reserves; by default ``min(1, cluster CPUs / workers)``, so that more
        workers than cores still start (sharing them).
    max_restarts : int, default 3
        How often a worker whose process dies is restarted (it reloads its shard and the
        update is computed again, with the same result).
    start_timeout : float, default 120.0
        Seconds to wait for the workers to start before giving up with a :class:`ClusterError`.
    compiled_graph : bool or None, default None
        Data-parallel training: send each update's parameters and receive its gradients through
        a Ray Compiled Graph (shared-memory channels, set up once per run) rather than by two
        remote calls and the object store. ``None``: from update ``GRAPH_AFTER + 1`` of a run
        on if the updates take less than ``GRAPH_MAX_UPDATE`` (0.1 s) by calls, and kept if
        its updates are not slower than the calls' were (its spinning waits take CPU, which
        slows the workers' computation where they share the cores); ``True``: from the first;
        ``False``: never. Where the graph cannot be compiled (e.g.
        a ``ray://`` client connection), plain calls are used; the numbers are the same either
        way.

    Examples
    --------
    >>> import descend as ds
    >>> ds.cluster.Ray(workers=2)
    Ray(workers=2, address=None)
    """

    def __init__(
        self,
        workers: int = 4,
        address: str | None = None,
        *,
        cpus_per_worker: float | None = None,
        max_restarts: int = 3,
        start_timeout: float = 120.0,
        compiled_graph: bool | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}; e.g. workers=2")
        if address is not None and not isinstance(address, str):
            raise TypeError(
                f"address must be None (a local Ray) or a string such as '10.0.0.5:6379', got "
                f"{type(address).__name__} {address!r}"
            )
        self.workers = int(workers)
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.max_restarts = max_restarts
        self.start_timeout = start_timeout
        self.compiled_graph = compiled_graph

    def __repr__(self) -> str:
        return f"Ray(workers={self.workers}, address={self.address!r})"

    # -- connection ------------------------------------------------------------------------

    def connect(self):
        """Start the local instance or connect to ``address`` (once); return the ``ray`` module.

        Raises
        ------
        ClusterError
            One line: Ray is not installed, or the address does not answer.

        Examples
        --------
        >>> import descend as ds
        >>> ray = ds.cluster.Ray(workers=2).connect()  # doctest: +SKIP
        >>> ray.cluster_resources()["CPU"]  # doctest: +SKIP
        2.0
        """
        ray = _import_ray()
        if self.address not in (None, "auto") and not self.address.startswith("ray://"):
            _probe(self.address)  # also when Ray is up: a wrong address is still a mistake
        if ray.is_initialized():
            return ray
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
        }
        if self.address is None:
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(address=self.address, **kwargs)
        except (ConnectionError, TimeoutError, RuntimeError) as exc:
            raise ClusterError(
                f"cannot connect to the Ray cluster at {self.address!r}: {_first_line(exc)}; "
                "check the address (HOST:PORT of the head node) or pass address=None for a "
                "local instance"
            ) from None
        return ray

    def _cpu_share(self, ray) -> float:
        if self.cpus_per_worker is not None:
            return float(self.cpus_per_worker)
        total = ray.cluster_resources().get("CPU", 1.0)
        return min(1.0, total / self.workers)

    # -- independent runs ------------------------------------------------------------------

    def map(
        self,
        fn: Callable,
        items: Iterable[dict],
        *,
        shared: dict | None = None,
        cost: Callable[[dict], float] | None = None,
    ) -> list:
        """``[fn(**shared, **kwargs) for kwargs in items]`` as Ray tasks, results in order.

        The runs go out in batches (one task each: the per-task cost of Ray, a few
        milliseconds, is paid once per batch), the most costly first when ``cost`` says which
        (so that no long run is left alone at the end), and the workers take the next batch as
        they finish one. The batches shrink as they go out, down to single runs, so that the
        workers finish at about the same time. A run that raises re-raises its own exception
        here (the first one in the order of ``items``).

        Parameters
        ----------
        fn : callable
            An importable function (a module-level one), called with keyword arguments.
        items : iterable of dict
            One dict of keyword arguments per run (each run gets its own copy).
        shared : dict, optional
            Keyword arguments common to every run (e.g. the data): put into Ray's object store
            once, read by every task; the runs must not change them.
        cost : callable, optional
            ``cost(item)``: a run's relative cost (e.g. its number of updates).

        Returns
        -------
        list
            The results, in the order of ``items``.

        Examples
        --------
        >>> import descend as ds
        >>> def area(width, height):
        ...     return width * height
        >>> cluster = ds.cluster.Ray(workers=2)
        >>> cluster.map(area, [{"width": 2}], shared={"height": 3})  # doctest: +SKIP
        [6]
        """
        ray = self.connect()
        items = list(items)
        order = list(range(len(items)))
        if cost is not None:
            order.sort(key=lambda i: -cost(items[i]))  # stable: ties keep their order
        batches = _shrinking_batches(order, MAP_SHARE * self.workers)
        task = ray.remote(num_cpus=self._cpu_share(ray), max_retries=self.max_restarts)(_runs)
        stored = ray.put(dict(shared or {}))  # once; a task's argument, fetched before it runs
        refs = [task.remote(fn, stored, [items[i] for i in batch]) for batch in batches]
        out: list = [None] * len(items)
        for batch, results in zip(batches, _get(ray, refs), strict=True):
            for i, result in zip(batch, results, strict=True):
                out[i] = result
        for result in out:
            if isinstance(result, _Raised):
                raise result.exc
        return out

    # -- data-parallel training ------------------------------------------------------------

    def data_parallel(
        self,
        model: Module,
        loss_fn: Callable,
        X,
        y,
        metric_fns: dict | None = None,
    ) -> DataParallel:
        """Start the workers on shards of ``(X, y)``; see :class:`DataParallel`.

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> model = ds.nn.mlp([3, 1], seed=0)
        >>> X, y = np.ones((10, 3), np.float32), np.zeros(10, np.float32)
        >>> cluster = ds.cluster.Ray(workers=2)
        >>> dp = cluster.data_parallel(model, ds.losses.mse, X, y)  # doctest: +SKIP
        >>> cost = dp.gradients(None)  # doctest: +SKIP
        >>> dp.bounds, model.parameters()[0].grad.shape  # doctest: +SKIP
        ([(0, 5), (5, 10)], (3, 1))
        >>> dp.close()  # doctest: +SKIP
        """
        return DataParallel(self, model, loss_fn, X, y, metric_fns or {})


def _shrinking_batches(order: list, parts: int) -> list[list]:
    """``order`` cut into consecutive batches, each ``1 / parts`` of what is left (at least one).

    >>> _shrinking_batches(list(range(10)), 4)
    [[0, 1], [2, 3], [4], [5], [6], [7], [8], [9]]
    """
    batches, start = [], 0
    while start < len(order):
        size = max(1, (len(order) - start) // parts)
        batches.append(order[start : start + size])
        start += size
    return batches


class _Raised:
    """A run's exception, returned by its task so that the other runs of its batch go on."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def _runs(fn: Callable, shared: dict, items: list) -> list:
    """A Ray task: ``fn(**shared, **item)`` for each item of a batch, in order.

    Arrays from the object store are read-only: each run's own arguments (a model it trains,
    say) are copied so that it may change them, as it may serially; the shared ones are only
    read."""
    import copy

    results: list = []
    for item in items:
        try:
            results.append(fn(**shared, **copy.deepcopy(item)))
        except Exception as exc:  # noqa: BLE001 - handed back, raised on the driver in order
            results.append(_Raised(exc))
    return results


def _probe(address: str) -> None:
    """One clear line when nothing listens at HOST:PORT (Ray itself would retry for a minute)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"address {address!r} is not HOST:PORT; pass e.g. '10.0.0.5:6379' (the head node's "
            "port), 'ray://10.0.0.5:10001' or None for a local instance"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5.0).close()
    except OSError as exc:
        raise ClusterError(
            f"the Ray cluster at {address!r} does not answer ({exc.strerror or exc}); start it "
            f"there with `ray start --head --port={port}`, check the address, or pass "
            "address=None for a local instance"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _get(ray, refs, timeout: float | None = None) -> list:
    """``ray.get``, re-raising a task's own exception (not Ray's wrapper around it)."""
    try:
        return ray.get(refs, timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise


def _as_pieces(data) -> list | None:
    """A list of shard file paths, or None when ``data`` is an array."""
    if (
        isinstance(data, list | tuple)
        and data
        and all(isinstance(p, str | os.PathLike) for p in data)
    ):
        return [os.fspath(p) for p in data]
    return None


class DataParallel:
    """Data-parallel sums of a batch's cost and gradients over Ray workers.

    The driver's model keeps the parameters and the optimizer; each update,
    :meth:`gradients` sends the parameters to every worker as one flat vector (serialized once
    for all of them), with each worker's rows of the batch, adds the flat gradient sums the
    workers return *in worker order* (so two runs are bit-identical), divides by the batch size
    and makes the parameters' ``.grad`` views of the result (a buffer overwritten by the next
    update, as with the compiled step on one machine: copy it in a callback to keep it).

    Parameters
    ----------
    cluster : Ray
    model : Module
        The driver's model; each worker gets a copy.
    loss_fn : callable
        A cost that is a mean over the rows (every built-in cost is).
    X, y : ndarray, or lists of ``.npy`` paths
        Arrays are cut into ``cluster.workers`` contiguous shards, each put into Ray's object
        store once. Lists of files (the same number for X and y, at least one per worker) are
        shared out in order, contiguous files to a worker, which opens them memory-mapped:
        the data never passes through the driver.
    metric_fns : dict of str to callable
        Metrics that are means over the rows (accuracy, mse, mae): the workers' sums give the
        batch's value.

    Attributes
    ----------
    n_samples : int
    shapes : ((X row shape, X dtype), (y row shape, y dtype))
    bounds : list of (start, stop)
        Each worker's rows, in global row numbers.
    scores : list of float
        The metrics of the last batch, in the order of ``metric_fns``.
    why_eager : str or None
        None when the workers compute with the compiled step, else why they run it eagerly.
    graph : bool
        Whether the last update went through the Ray Compiled Graph.
    """

    def __init__(
        self, cluster: Ray, model: Module, loss_fn: Callable, X, y, metric_fns: dict
    ) -> None:
        ray = cluster.connect()
        self._ray, self.cluster = ray, cluster
        self.model, self.params = model, model.parameters()
        self.layout = Layout(self.params)
        self._send = np.empty(self.layout.size, self.layout.dtype)
        self._total = np.empty(self.layout.size, self.layout.dtype)
        self._grad_views = self.layout.views(self._total)
        self.metric_names = list(metric_fns)
        self.scores: list[float] = []
        self.updates, self.graph, self._dag, self._graph_failures = 0, False, None, 0
        # with compiled_graph=None: each update's time (start to start) by path, to keep the
        # graph only where it is faster (on a machine crowded by other work, its spinning
        # waits can make it slower than calls)
        self._cycles: dict[bool, list[float]] = {False: [], True: []}
        self._last_start: float | None = None
        x_files, y_files = _as_pieces(X), _as_pieces(y)
        if (x_files is None) != (y_files is None):
            raise TypeError(
                "X and y must both be arrays or both be lists of .npy shard files, got "
                f"{type(X).__name__} and {type(y).__name__}"
            )
        if x_files is not None:
            pieces, lengths = self._file_pieces(cluster.workers, x_files, y_files)
        else:
            X, y = np.asarray(X) if not isinstance(X, np.memmap) else X, np.asarray(y)
            ranges = split_rows(len(X), min(cluster.workers, len(X)))
            # put into the object store once; each worker gets its shard from there
            pieces = [([ray.put(X[a:b])], [ray.put(y[a:b])]) for a, b in ranges]
            lengths = [b - a for a, b in ranges]
        model_ref = [ray.put(model)]
        self._refs = (pieces, model_ref)  # held: in the store while the workers may restart
        actor = ray.remote(
            num_cpus=cluster._cpu_share(ray),
            max_restarts=cluster.max_restarts,
            max_task_retries=cluster.max_restarts,
        )(_RayShardWorker)
        self.workers = [
            actor.options(scheduling_strategy="SPREAD").remote(
                model_ref, loss_fn, metric_fns, xs, ys, i
            )
            for i, (xs, ys) in enumerate(pieces)
        ]
        self._await_start(cluster, lengths)

    def _file_pieces(self, workers: int, x_files: list, y_files: list):
        if len(x_files) != len(y_files):
            raise ValueError(
                f"X lists {len(x_files)} shard files and y {len(y_files)}; give one y file for "
                "each X file"
            )
        lengths_each = []
        for path in x_files:
            try:  # the header only: a memory map reads no data
                lengths_each.append(len(np.load(path, mmap_mode="r", allow_pickle=False)))
            except FileNotFoundError:
                lengths_each.append(None)  # maybe present on the workers only; they will say
        groups = split_rows(len(x_files), min(workers, len(x_files)))
        pieces = [(x_files[a:b], y_files[a:b]) for a, b in groups]
        return pieces, [None if None in lengths_each[a:b] else sum(lengths_each[a:b])
                        for a, b in groups]  # fmt: skip

    def _await_start(self, cluster: Ray, lengths: list) -> None:
        ray = self._ray
        try:
            described = ray.get(
                [w.describe.remote() for w in self.workers], timeout=cluster.start_timeout
            )
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ClusterError(
                f"{len(self.workers)} workers did not start within {cluster.start_timeout:g} s "
                f"(the cluster has {ray.cluster_resources().get('CPU', 0):g} CPUs); use fewer "
                "workers, a smaller cpus_per_worker, or a larger start_timeout"
            ) from None
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            self.close()
            raise ClusterError(f"a worker could not start: {_cause_line(exc)}") from None
        self.shapes = described[0][1:3]
        self.why_eager = next((d[3] for d in described if d[3] is not None), None)
        if None in lengths:  # files the driver could not see: the workers counted them
            lengths = [d[0] for d in described]
        starts = np.cumsum([0, *lengths])
        self.bounds = [(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]
        self.n_samples = int(starts[-1])

    def pids(self) -> list[int]:
        """The workers' process ids, in worker order."""
        return _get(self._ray, [w.pid.remote() for w in self.workers])

    @property
    def grads(self) -> np.ndarray:
        """The last batch's mean gradients, one flat vector (the ``.grad`` are views of it)."""
        return self._total

    def _rows_of(self, rows: np.ndarray | None) -> tuple | None:
        if rows is None or len(rows) == self.n_samples:
            return None  # every row: each worker takes its whole shard
        rows = np.asarray(rows).reshape(-1)
        return tuple(rows[(rows >= a) & (rows < b)] - a for a, b in self.bounds)

    def gradients(self, rows: np.ndarray | None) -> float:
        """The batch's mean cost; its mean gradients are written into the parameters' ``.grad``.

        Parameters
        ----------
        rows : ndarray of int, or None
            The batch's global row numbers (None: every row).

        Returns
        -------
        float
            The cost of the batch at the current parameters (before any update).
        """
        self._time_cycle()
        weights = self.layout.gather([p.data for p in self.params], self._send)
        parts = self._sums(weights, self._rows_of(rows))
        total, n, cost, first = self._total, 0, 0.0, True
        for rows_used, part_cost, _, grads in parts:  # in worker order, always the same
            if not rows_used:
                continue
            n += rows_used
            cost += part_cost
            if first:
                np.copyto(total, grads)
                first = False
            else:
                total += grads
        total /= n
        for p, g in zip(self.params, self._grad_views, strict=True):
            p.grad = g
        self.scores = [sum(part[2][i] for part in parts if part[0]) / n
                       for i in range(len(self.metric_names))]  # fmt: skip
        self.updates += 1
        return cost / n

    def _sums(self, weights: np.ndarray, rows: tuple | None) -> list:
        """Every worker's ``(n, cost, metrics, grads)``, in worker order: through the compiled
        graph when there is one, else (and to do an update again after a failure) by calls."""
        if self._dag is None and self._graph_wanted():
            self._compile_graph(weights)
        if self._dag is not None:
            try:
                parts = self._ray.get(self._dag.execute((weights, rows)), timeout=-1)
            except Exception as exc:  # noqa: BLE001 - a worker died (or raised): by calls
                log.info("the compiled graph failed (%s); the update is done again by calls",
                         _first_line(exc))  # fmt: skip
                self._graph_failures += 1
                self._drop_graph()
            else:
                self.graph = True
                return parts
        self.graph = False
        ray = self._ray
        sent = ray.put(weights) if weights.nbytes > INLINE_BYTES else weights  # once for all
        refs = [
            w.sums.remote(sent, None if rows is None else rows[i])
            for i, w in enumerate(self.workers)
        ]
        return _get(ray, refs)

    def _time_cycle(self) -> None:
        now = time.perf_counter()
        if self._last_start is not None and self.cluster.compiled_graph is None:
            cycles = self._cycles[self.graph]
            cycles.append(now - self._last_start)
            del cycles[: -GRAPH_TRIAL - 1]
            graph, calls = self._cycles[True][1:], self._cycles[False]  # [0]: with the compile
            if self._dag is not None and len(graph) == GRAPH_TRIAL and calls:
                by_graph, by_calls = statistics.median(graph), statistics.median(calls)
                if by_graph > by_calls:
                    log.info("the compiled graph took %.2f ms an update against %.2f ms by "
                             "calls; calls for the rest of the run", by_graph * 1e3,
                             by_calls * 1e3)  # fmt: skip
                    self._drop_graph()
                    self._graph_failures = self.cluster.max_restarts + 1
                self._cycles[True] = []  # decided
        self._last_start = now

    def _graph_wanted(self) -> bool:
        wanted = self.cluster.compiled_graph
        if wanted is False or self._graph_failures > self.cluster.max_restarts:
            return False
        if wanted is True:
            return True
        calls = self._cycles[False]
        # an update of GRAPH_MAX_UPDATE or more is its computation: little to win, and the
        # graph's spinning waits would take cores from the workers
        return (
            self.updates >= GRAPH_AFTER
            and bool(calls)
            and statistics.median(calls) < GRAPH_MAX_UPDATE
        )

    def _compile_graph(self, weights: np.ndarray) -> None:
        try:
            from ray.dag import InputNode, MultiOutputNode

            with InputNode() as message:
                dag = MultiOutputNode([w.run.bind(message) for w in self.workers])
            # room for the parameters and the rows of a batch; a larger message grows it
            self._dag = dag.experimental_compile(_buffer_size_bytes=weights.nbytes + (1 << 20))
        except Exception as exc:  # noqa: BLE001 - e.g. a ray:// client: calls, as before
            log.info("no compiled graph (%s); plain actor calls", _first_line(exc))
            self._graph_failures = self.cluster.max_restarts + 1
            self._dag = None

    def _drop_graph(self) -> None:
        dag, self._dag = self._dag, None
        if dag is not None:
            try:
                dag.teardown()
            except Exception:  # noqa: BLE001 - already torn down by Ray after a failure
                pass

    def close(self) -> None:
        """Stop the workers (the Ray instance stays up for the next run)."""
        self._drop_graph()
        for w in getattr(self, "workers", []):
            try:
                self._ray.kill(w)
            except Exception:  # noqa: BLE001 - an actor already gone is what we want
                pass
        self.workers = []

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _RayShardWorker(ShardWorker):
    """A :class:`ShardWorker` whose shard may be in Ray's object store: fetched when it starts
    (again after a restart), so the driver's references keep it there."""

    def __init__(self, model, loss_fn, metric_fns, X_pieces, y_pieces, index) -> None:
        import ray

        def fetch(pieces):
            return [ray.get(p) if isinstance(p, ray.ObjectRef) else p for p in pieces]

        # Each argument arrives in a list: Ray leaves references inside a list alone, and
        # an actor whose (restart) arguments are references itself warns at every start.
        (model,) = fetch(model)
        super().__init__(model, loss_fn, metric_fns, fetch(X_pieces), fetch(y_pieces), index)


def _cause_line(exc: BaseException) -> str:
    """The worker's own error inside Ray's report: its type and first line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        return f"{type(cause).__name__}: {_first_line(cause)}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__  # a traceback ends with the error


__all__ = ["ClusterError", "DataParallel", "Ray"]
