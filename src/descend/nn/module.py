"""``Module``: the base of every layer and network, holding parameters and sub-modules by name."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from descend.autodiff.tensor import Tensor


class Module:
    """A function from inputs to outputs with named, trainable parameters.

    Assigning a :class:`Tensor` with ``requires_grad=True`` to an attribute registers it as a
    parameter; assigning a ``Module`` registers it as a sub-module. ``named_parameters()`` then
    lists every parameter with a dotted name (``"0.weight"``), in registration order.

    Subclasses implement :meth:`forward`.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> class Scale(ds.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.factor = ds.Tensor(np.array([2.0]), requires_grad=True)
    ...     def forward(self, x):
    ...         return x * self.factor
    >>> list(Scale().named_parameters())
    ['factor']
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            object.__setattr__(self, "_parameters", {})
            object.__setattr__(self, "_modules", {})
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Tensor) and value.requires_grad:
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, x):
        """Compute the output for input ``x``; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def __call__(self, x):
        return self.forward(x)

    def named_parameters(self, prefix: str = "") -> dict[str, Tensor]:
        """Every parameter, by dotted name, in a fixed order.

        Returns
        -------
        dict of str to Tensor
            E.g. ``{"0.weight": ..., "0.bias": ..., "2.weight": ...}``.

        Examples
        --------
        >>> import descend as ds
        >>> model = ds.nn.Sequential(ds.nn.Dense(3, 2), ds.nn.Dense(2, 1))
        >>> list(model.named_parameters())
        ['0.weight', '0.bias', '1.weight', '1.bias']
        """
        out: dict[str, Tensor] = {}
        for name, p in self._parameters.items():
            out[prefix + name] = p
        for name, m in self._modules.items():
            out.update(m.named_parameters(prefix + name + "."))
        return out

    def parameters(self) -> list[Tensor]:
        """The parameters as a list, in the order of :meth:`named_parameters`.

        Examples
        --------
        >>> import descend as ds
        >>> [p.shape for p in ds.nn.Dense(3, 2).parameters()]
        [(3, 2), (2,)]
        """
        return list(self.named_parameters().values())

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, depth first."""
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def zero_grad(self) -> None:
        """Forget the gradients (set every parameter's ``.grad`` to None) before the next backward.

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> layer = ds.nn.Dense(2, 1)
        >>> layer(np.ones((1, 2))).sum().backward()
        >>> layer.zero_grad(); layer.weight.grad is None
        True
        """
        for p in self._parameters.values():
            p.grad = None
        for m in self._modules.values():
            m.zero_grad()

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the first parameter (None for a module without parameters)."""
        for p in self._parameters.values():  # the order of named_parameters, without its dict
            return p.dtype
        for m in self._modules.values():
            dtype = m.dtype
            if dtype is not None:
                return dtype
        return None

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's values, by dotted name.

        Examples
        --------
        >>> import descend as ds
        >>> sorted(ds.nn.Dense(2, 1).state_dict())
        ['bias', 'weight']
        """
        return {name: p.data.copy() for name, p in self.named_parameters().items()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy values into the parameters, in place (optimizers keep pointing at the same arrays).

        Parameters
        ----------
        state : dict of str to ndarray
            As returned by :meth:`state_dict`.
        strict : bool, default True
            Require exactly the same names; otherwise copy only the names both have.

        Examples
        --------
        >>> import descend as ds
        >>> a, b = ds.nn.Dense(2, 1, seed=0), ds.nn.Dense(2, 1, seed=1)
        >>> b.load_state_dict(a.state_dict()); bool((a.weight.data == b.weight.data).all())
        True
        """
        params = self.named_parameters()
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if strict and (missing or unexpected):
            raise ValueError(
                f"state does not match the model: missing {missing}, unexpected {unexpected}; "
                "load a state saved from the same architecture, or pass strict=False"
            )
        for name, p in params.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != p.data.shape:
                raise ValueError(
                    f"state[{name!r}] has shape {value.shape}, the model's parameter has "
                    f"{p.data.shape}; load a state saved from the same architecture"
                )
            np.copyto(p.data, value, casting="same_kind")

    def get_config(self) -> dict:
        """A JSON-serialisable description from which :func:`descend.nn.from_config` rebuilds it."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be described for saving; implement get_config() and "
            "register the class with descend.nn.register_module"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
