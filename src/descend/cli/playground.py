"""``descend playground``: watch and steer gradient descent in the browser."""

from __future__ import annotations

import argparse
import sys
import threading

from descend.cli.errors import CLIError

EPILOG = """\
examples:
  descend playground                       # the built-in data sets, at http://127.0.0.1:8765/
  descend playground prices.csv --target price   # your own data, offered as "your data"
  descend playground --port 0 --no-browser # any free port; print the address only

The page trains with descend's own update step: what it shows equals ds.fit with the same
seed and settings. It listens on 127.0.0.1 (this computer only) unless --host says otherwise.
Stop it with Ctrl-C.
"""


def register(subparsers, parents) -> None:
    """Add ``descend playground``."""
    parser = subparsers.add_parser(
        "playground", help="watch and steer gradient descent in the browser",
        description="Start a local web page that trains a network live: choose the data, the "
        "layers, the cost, the update rule, the rate and the batch size; play, pause or step; "
        "watch the cost, the decision boundary, the activations and backpropagation.",
        epilog=EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument(
        "data", nargs="?", metavar="DATA",
        help="a CSV/.npy file or a built-in data set to offer as 'your data'",
    )  # fmt: skip
    parser.add_argument("--target", metavar="COLUMN", help="the target column of a CSV file")
    parser.add_argument(
        "--port", type=int, default=8765, metavar="N",
        help="the port to listen on (default 8765; 0 for any free port)",
    )  # fmt: skip
    parser.add_argument(
        "--host", default="127.0.0.1", metavar="H",
        help="the address to listen on (default 127.0.0.1: this computer only)",
    )  # fmt: skip
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``descend playground`` until Ctrl-C."""
    from descend.cli import data as data_module

    try:
        from descend.playground import server as server_module
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port {args.port} is not a port; use 1 to 65535, or 0 for any free one")
    given = data_module.load(args.data, args.target) if args.data else None
    if given is not None and given.y is None:
        raise CLIError(f"{args.data} has no target; give one with --target COLUMN")
    try:
        server, _ = server_module.make_server(given)
        sock = server_module.bind(args.host, args.port)
    except (ImportError, OSError) as exc:
        raise CLIError(str(exc)) from None
    url = server_module.url_of(sock)
    print(f"descend playground: open {url} in a browser (Ctrl-C stops it)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"  listening on {args.host}: other computers can reach it", flush=True)
    # The digits come through scikit-learn, slow to import: load them before the first click.
    threading.Thread(target=_warm_up, daemon=True).start()
    if not args.no_browser and server_module.browser_available():
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("descend playground: stopped", file=sys.stderr)
    return 0


def _warm_up() -> None:
    from descend.playground.session import load_choice

    try:
        load_choice("digits:0-3")
    except Exception:  # noqa: BLE001 - a failure shows when the learner picks the digits
        pass
