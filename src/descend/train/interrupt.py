"""The Ctrl-C guard of ``fit``: an update and its record are applied whole, never half."""

from __future__ import annotations

import signal
import threading

try:  # the C module under ``signal``: the same calls without converting handlers to enums
    import _signal as _raw_signal  # (a few microseconds a call, twice per fit)
except ImportError:  # not CPython
    _raw_signal = signal


class DeferInterrupt:
    """Holds Ctrl-C back while an update is applied, so parameters are never half-updated.

    Installed as the SIGINT handler for the duration of ``fit`` (main thread only, and only over
    a Python-level handler such as the default one that raises KeyboardInterrupt). Outside the
    critical section it passes the signal on at once; inside, it notes it, and the loop passes
    it on right after the section. The section costs two attribute stores and one load per
    update, whatever the size of the model.
    """

    __slots__ = ("critical", "pending", "_previous", "_installed")

    def __init__(self) -> None:
        self.critical = False
        self.pending = False
        self._previous = None
        self._installed = False

    def install(self) -> DeferInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals only ever reach the main thread
        previous = _raw_signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return self  # SIG_IGN or SIG_DFL: the user's choice stands
        try:
            _raw_signal.signal(signal.SIGINT, self._handle)
        except ValueError:
            return self
        self._previous = previous
        self._installed = True
        return self

    def _handle(self, signum, frame) -> None:
        if self.critical:
            self.pending = True
        else:
            self._previous(signum, frame)

    def release(self) -> None:
        """Pass on the interrupt that arrived during the critical section."""
        self.pending = False
        if self._previous is not None:
            self._previous(signal.SIGINT, None)

    def uninstall(self) -> None:
        if self._installed and _raw_signal.getsignal(signal.SIGINT) == self._handle:
            _raw_signal.signal(signal.SIGINT, self._previous)
        self._installed = False
