"""Memory limits of the command: estimate what a request needs before allocating it.

A request too large for the machine (``--hidden 1000000000000``, ``moons:100000000000``, a
``.npy`` file whose header claims terabytes) is a usage error that says what was asked, how much
memory it needs, how much is available, and what to change, instead of a ``MemoryError`` (or the
kernel's out-of-memory killer) halfway through.
"""

from __future__ import annotations

import math
import os
import resource

from descend.cli.errors import UsageError

# The share of the available memory one request may plan to use: the estimates are rough,
# and the process holds other things (NumPy, the figures).
USABLE_SHARE = 0.8


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _address_space_left() -> int | None:
    # A limit set with ulimit -v (RLIMIT_AS) caps the process below the machine's memory.
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ValueError, OSError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, soft - used)


def available_memory() -> int:
    """Bytes this process can still allocate: the machine's available memory, or less under
    an address-space limit (``ulimit -v``); 1 TiB when neither is known.

    >>> available_memory() > 0
    True
    """
    known = [n for n in (_meminfo_available(), _address_space_left()) if n is not None]
    return min(known) if known else 1 << 40


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> human_bytes(3 * 2**30), human_bytes(12)
    ('3 GiB', '12 bytes')
    """
    if n < 1024:
        return f"{int(n)} bytes"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    exponent = min(int(math.log(n, 1024)), len(units))
    return f"{n / 1024**exponent:.3g} {units[exponent - 1]}"


def check_memory(needed: float, asked: str, fix: str) -> None:
    """Raise a :class:`UsageError` when ``needed`` bytes exceed what this process may use.

    Parameters
    ----------
    needed : float
        The estimate, in bytes.
    asked : str
        What was asked, as the user wrote it (``"--hidden 1000000000000"``).
    fix : str
        What to change.

    Examples
    --------
    >>> check_memory(1024, "a small network", "nothing")
    >>> try:
    ...     check_memory(2.0**70, "moons:10**20", "ask for fewer samples")
    ... except UsageError as err:
    ...     print(str(err).split(";")[0])
    moons:10**20 needs about 1.02e+03 EiB of memory
    """
    available = available_memory()
    if needed > USABLE_SHARE * available:
        raise UsageError(
            f"{asked} needs about {human_bytes(needed)} of memory; {human_bytes(available)} is "
            f"available; {fix}"
        )


def check_network(sizes: list[int], n_samples: int, asked: str) -> None:
    """Refuse a network whose weights and activations cannot fit in memory.

    The estimate: float32 weights with their gradients and two optimizer buffers (4 copies),
    the recorded snapshots, and the activations of the whole data set in one forward and
    backward pass (evaluation runs on all samples at once).

    >>> check_network([2, 32, 1], 200, "--hidden 32")
    """
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    activations = n_samples * sum(sizes) * 3
    check_memory(
        4 * (5 * n_params + activations),
        f"the network {'-'.join(map(str, sizes))} ({asked})",
        "choose smaller layers (--hidden)",
    )
