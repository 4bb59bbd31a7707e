"""Reverse-mode accumulation: topological order, then the vjps from the output to the leaves."""

from __future__ import annotations

import numpy as np

from descend.autodiff.tensor import Tensor, _state


def toposort(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on (and that wants a gradient), parents before children.

    Iterative depth-first search, so a graph of any depth (a chain of 100,000 operations) works
    without touching Python's recursion limit.

    Parameters
    ----------
    root : Tensor

    Returns
    -------
    list of Tensor
        ``root`` last.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> x = ds.Tensor(np.ones(2), requires_grad=True)
    >>> [t.op for t in toposort((x * 2).sum())]
    [None, 'multiply', 'sum']
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def leaf_grad(g, data: np.ndarray, handed_out: set[int]) -> np.ndarray:
    """The array a leaf whose values are ``data`` receives as its gradient ``g``: an ndarray of
    ``data``'s dtype and shape that no other leaf holds (``handed_out``: the ids given so far).

    Examples
    --------
    >>> leaf_grad(np.float64(2.0), np.zeros(3, np.float32), set())
    array([2., 2., 2.], dtype=float32)
    """
    if not isinstance(g, np.ndarray):  # NumPy gives scalars for 0-d results
        g = np.asarray(g)
    if g.dtype != data.dtype:
        g = g.astype(data.dtype)
    elif not g.flags.writeable or not g.flags.owndata or id(g) in handed_out:
        # A broadcast view, a view into another gradient (reshape/transpose vjps return views),
        # or an array another tensor's .grad already holds: give this one its own.
        g = g.copy()
    if g.shape != data.shape:
        g = np.broadcast_to(g, data.shape).copy()
    handed_out.add(id(g))
    return g


def _accumulate_into_grad(tensor: Tensor, g: np.ndarray, handed_out: set[int]) -> None:
    g = leaf_grad(g, tensor.data, handed_out)
    tensor.grad = g if tensor.grad is None else tensor.grad + g


def backward(root: Tensor, grad=None) -> None:
    """Add dC/dx into ``x.grad`` for every leaf ``x`` that ``root`` (the cost C) depends on.

    Parameters
    ----------
    root : Tensor
        The result to differentiate, usually a scalar cost.
    grad : array_like, optional
        dC/d(root), same shape as root. Defaults to 1 for a one-element root.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> w = ds.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    >>> backward((w * 3).sum())
    >>> w.grad
    array([3., 3.])
    """
    grad = _seed(root, grad)
    # descend.compile records this pass (tracer) to replay it without tensors: every vjp and
    # every sum of two contributions, in this order.
    tracer = _state.tracer
    if tracer is not None:
        tracer.seed(root, grad)
    grads: dict[int, np.ndarray] = {id(root): grad}
    handed_out: set[int] = set()
    for node in reversed(toposort(root)):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if node._prim is None or node._retain:
            _accumulate_into_grad(node, g, handed_out)
            if tracer is not None:
                tracer.leaf(node, g)
        if node._prim is None:
            continue
        parents = node._parents
        needs = tuple(p is not None for p in parents)
        input_grads = node._prim.vjp(g, node.data, needs, *node._inputs, **node._params)
        if tracer is not None:
            tracer.vjp(node, g, needs, input_grads)
        for parent, dp in zip(parents, input_grads, strict=True):
            if parent is None:
                continue
            key = id(parent)
            previous = grads.get(key)
            if previous is None:
                grads[key] = dp
            else:
                grads[key] = total = previous + dp
                if tracer is not None:
                    tracer.accumulate(previous, dp, total)


def _seed(root: Tensor, grad) -> np.ndarray:
    """dC/d(root) as an array of root's shape and dtype: 1 for a one-element root."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() needs a result that depends on a tensor with requires_grad=True; "
            "create the weights with Tensor(..., requires_grad=True) and compute outside no_grad()"
        )
    if grad is None:
        if root.data.size != 1:
            raise ValueError(
                f"backward() without grad needs a one-element result, got shape {root.shape}; "
                "reduce it first (e.g. loss.mean()) or pass grad= with the same shape"
            )
        grad = np.ones_like(root.data)
    else:
        # A copy: the caller's array must never become (or alias) some tensor's .grad.
        grad = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(
                f"backward(grad=...) needs the shape of the result {root.shape}, got {grad.shape}"
            )
    return grad
