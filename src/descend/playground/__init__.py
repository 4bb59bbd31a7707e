"""The playground: watch and steer gradient descent in the browser, on descend's own engine.

``descend playground`` (or :func:`playground` from a notebook) starts a local web server; each
browser tab gets its own :class:`~descend.playground.session.Session` on the server, which
trains with descend's one-update step, so the page shows the very numbers ``ds.fit`` computes.
The server needs the ``playground`` extra: ``pip install "descend[playground]"``.
"""

import sys
import types

from descend.playground.notebook import Playground, playground
from descend.playground.session import DATASETS, PlaygroundError, Session

__all__ = ["DATASETS", "Playground", "PlaygroundError", "Session", "playground"]


class _CallablePackage(types.ModuleType):
    """``ds.playground(X, y)`` calls :func:`playground`; ``ds.playground.Session`` etc. stay."""

    def __call__(self, X=None, y=None, **kwargs) -> Playground:
        return playground(X, y, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
