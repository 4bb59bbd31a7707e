"""Running the playground's app: in the foreground (the command) or in a thread (a notebook)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable

from descend.playground.app import MAX_MESSAGE_BYTES, create_app

__all__ = ["BackgroundServer", "bind", "browser_available", "make_server", "url_of"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), so the address is known
    before the server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        busy = exc.errno in (48, 98)  # EADDRINUSE on macOS, Linux
        hint = "choose another --port (0 picks a free one)" if busy else "check --host"
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The page's address for a bound socket.

    >>> sock = bind("127.0.0.1", 0)
    >>> url_of(sock).startswith("http://127.0.0.1:")
    True
    >>> sock.close()
    """
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def make_server(given=None, model_factory: Callable | None = None, quiet: bool = True):
    """A uvicorn server around the playground's app (not started)."""
    try:
        import uvicorn
    except ImportError:
        raise ImportError(
            'the playground needs Starlette and uvicorn: pip install "descend[playground]"'
        ) from None
    app = create_app(given, model_factory)
    config = uvicorn.Config(
        app, log_level="warning" if quiet else "info", ws_max_size=MAX_MESSAGE_BYTES,
        lifespan="off", timeout_graceful_shutdown=2,
    )  # fmt: skip
    return uvicorn.Server(config), app


def browser_available() -> bool:
    """Whether opening a browser makes sense here: a desktop, and not a test run.

    >>> browser_available()   # under the tests: never
    False
    """
    if os.environ.get("PYTEST_CURRENT_TEST") or os.environ.get("CI"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class BackgroundServer:
    """The playground served from a thread of this process (for notebooks and tests).

    Examples
    --------
    >>> server = BackgroundServer().start()   # doctest: +SKIP
    >>> server.url                            # doctest: +SKIP
    'http://127.0.0.1:54321/'
    >>> server.stop()                         # doctest: +SKIP
    """

    def __init__(self, given=None, model_factory: Callable | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:  # fmt: skip
        self.server, self.app = make_server(given, model_factory)
        self.socket = bind(host, port)
        self.url = url_of(self.socket)
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        """Start serving; returns once the server accepts connections."""
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True,
            name="descend-playground",
        )  # fmt: skip
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the playground server did not start at {self.url}")
            time.sleep(0.02)
        return self

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        try:
            self.socket.close()
        except OSError:
            pass
