"""The playground's web server: the page, one WebSocket session per tab, and the downloads.

The page (``static/``: HTML, CSS and hand-written canvas/SVG drawing, no build step, nothing
fetched from the internet) talks to the server over a WebSocket with small JSON messages::

    {"type": "configure", "settings": {...}}   {"type": "step", "n": 1}   {"type": "epoch"}
    {"type": "reset", "new_seed": false}       {"type": "sample", "index": 3}
    {"type": "upload", "name": "x.csv", "text": "...", "target": "price"}
    {"type": "race", "action": "start" | "step", "k": 16}   {"type": "minima", "lr": 0.05, ...}

and gets back ``setup``, ``frame``, ``race``, ``minima`` or ``error`` messages (with the ``id``
the request carried). A malformed message gets an ``error`` reply; the server goes on. Each
connection is one :class:`~descend.playground.session.Session`, dropped when the tab closes.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descend.cli.errors import CLIError
from descend.playground import export
from descend.playground.race import Race, check_race_request, minima
from descend.playground.session import PlaygroundError, Session

__all__ = ["MAX_SESSIONS", "MAX_UPLOAD_BYTES", "create_app", "handle"]

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # an uploaded CSV, as text
# A message: the upload in JSON (escaped newlines and quotes make it longer) and its wrapping.
# Anything longer closes that one connection (uvicorn's frame limit); the server goes on.
MAX_MESSAGE_BYTES = 3 * MAX_UPLOAD_BYTES + 64 * 1024
MAX_SESSIONS = 32  # open tabs at once; the next one is told to close one
VIEWS = ("boundary", "network")
log = logging.getLogger("descend.playground")


def _views(message: dict) -> tuple[str, ...]:
    views = message.get("views", VIEWS)
    if not isinstance(views, list | tuple):
        raise PlaygroundError(f"views must be a list of {VIEWS}, got {views!r}")
    return tuple(v for v in views if v in VIEWS)


def _upload(session: Session, message: dict) -> dict:
    from descend.cli import data as data_module

    text, name = message.get("text"), message.get("name", "upload.csv")
    target = message.get("target") or None
    if not isinstance(text, str) or not isinstance(name, str):
        raise PlaygroundError("an upload needs the file's text and name")
    if target is not None and not isinstance(target, str):
        raise PlaygroundError(f"target must be a column name, got {target!r}")
    if len(text.encode("utf-8")) > MAX_UPLOAD_BYTES:
        raise PlaygroundError(
            f"{name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; upload a smaller "
            "CSV file (or train on it with descend train)"
        )
    # The browser's name is shown, never used as a path: the text goes to a fresh temporary
    # file that the command line's CSV reader checks as it checks any file.
    shown = Path(name.replace("\\", "/")).name[:80] or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="descend-upload-") as folder:
        path = Path(folder) / "upload.csv"
        path.write_text(text, encoding="utf-8")
        try:
            data = data_module.load(str(path), target)
        except CLIError as exc:
            message = str(exc).replace(str(path), shown).replace("--target", "target")
            raise PlaygroundError(message) from None
    if data.n_samples < 4:
        raise PlaygroundError(f"{shown} has {data.n_samples} rows; upload at least 4")
    data.name, data.source = shown, f"uploaded file {shown}"
    previous = session.uploaded, session.upload_name
    session.uploaded, session.upload_name = data, shown
    try:
        return session.configure({"data": "upload"})
    except PlaygroundError:
        session.uploaded, session.upload_name = previous
        raise


def _race(session: Session, message: dict, state: dict) -> dict:
    action = message.get("action", "step")
    if action == "start" or state.get("race") is None:
        state["race"] = Race(session, k=check_race_request(message))
        if action == "start":
            return state["race"].state()
    return state["race"].step()


def _minima(message: dict) -> dict:
    keys = ("lr", "n_starts", "steps", "noise", "seed")
    return minima(**{k: message[k] for k in keys if k in message})


def _sample(session: Session, message: dict) -> dict:
    index = _int(message.get("index"))
    session.settings["sample"] = min(index, len(session.prep.X_train) - 1)
    return session.frame(*session._marks(), ("network",))


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PlaygroundError(f"index must be a whole number >= 0, got {value!r}")
    return value


HANDLERS: dict[str, Callable[[Session, dict, dict], dict]] = {
    "hello": lambda s, m, st: s.setup(),
    "configure": lambda s, m, st: s.configure(m.get("settings", {})),
    "reset": lambda s, m, st: s.reset(bool(m.get("new_seed", False))),
    "step": lambda s, m, st: s.step(m.get("n", 1), _views(m)),
    "epoch": lambda s, m, st: s.epoch(_views(m)),
    "sample": lambda s, m, st: _sample(s, m),
    "upload": lambda s, m, st: _upload(s, m),
    "race": lambda s, m, st: _race(s, m, st),
    "minima": lambda s, m, st: _minima(m),
}


def handle(session: Session, text: str, state: dict | None = None) -> dict:
    """Answer one message from the page; never raises (an error is a reply).

    Examples
    --------
    >>> handle(Session(), "not json")["type"]
    'error'
    >>> handle(Session(), '{"type": "step", "n": 2}')["updates"]
    2
    """
    state = {} if state is None else state
    request_id = None
    try:
        try:
            message = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise PlaygroundError("the message is not JSON; the page sends JSON objects") from None
        if not isinstance(message, dict):
            raise PlaygroundError("the message must be a JSON object with a type")
        request_id = message.get("id")
        kind = message.get("type")
        if kind not in HANDLERS:
            raise PlaygroundError(f"unknown message type {kind!r}; types are {sorted(HANDLERS)}")
        reply = HANDLERS[kind](session, message, state)
    except PlaygroundError as exc:
        reply = {"type": "error", "message": str(exc)}
    except (ValueError, TypeError, KeyError, OverflowError, FloatingPointError) as exc:
        log.warning("playground request failed: %s: %s", type(exc).__name__, exc)
        reply = {"type": "error", "message": f"the request could not be done: {exc}"}
    if isinstance(request_id, int | str):
        reply = {**reply, "id": request_id}
    return reply


def _answer(session: Session, text: str, state: dict, token: str) -> str:
    reply = handle(session, text, state)
    if reply.get("type") == "setup":
        reply["token"] = token
    return _dumps(reply)


def _dumps(reply: dict) -> str:
    # NaN is not JSON: a diverged number goes out as null.
    try:
        return json.dumps(reply, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_no_nan(reply), separators=(",", ":"))


def _no_nan(value):
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def create_app(given=None, model_factory: Callable | None = None):
    """The Starlette application: ``/`` (the page), ``/static``, ``/ws``, ``/download``.

    Parameters
    ----------
    given : descend.cli.data.Dataset, optional
        Data offered to every tab as "your data" (from the command line or a notebook).
    model_factory : callable, optional
        ``sizes -> Module`` for the given data (a notebook's own model).

    Returns
    -------
    starlette.applications.Starlette
        With ``app.state.sessions`` the open sessions by token.
    """
    try:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import FileResponse, PlainTextResponse, Response
        from starlette.routing import Mount, Route, WebSocketRoute
        from starlette.staticfiles import StaticFiles
        from starlette.websockets import WebSocketDisconnect
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the playground needs Starlette and uvicorn: pip install "descend[playground]"'
        ) from None

    sessions: dict[str, Session] = {}

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def download(request):
        session = sessions.get(request.path_params["token"])
        name = request.path_params["name"]
        if session is None:
            return PlainTextResponse("no such session (reload the page)", status_code=404)
        makers = {
            "model.npz": (export.model_bytes, "application/octet-stream"),
            "config.toml": (export.config_toml, "text/plain; charset=utf-8"),
            "run.py": (export.python_script, "text/x-python; charset=utf-8"),
            "data.csv": (export.data_csv, "text/csv; charset=utf-8"),
        }
        if name not in makers:
            return PlainTextResponse(f"nothing to download as {name!r}", status_code=404)
        make, media = makers[name]
        body = await run_in_threadpool(make, session)
        disposition = f'attachment; filename="{name}"'
        return Response(body, media_type=media, headers={"Content-Disposition": disposition})

    async def socket(websocket):
        await websocket.accept()
        if len(sessions) >= MAX_SESSIONS:
            full = f"{MAX_SESSIONS} playground tabs are open already; close one and reload"
            await websocket.send_text(_dumps({"type": "error", "message": full}))
            await websocket.close()
            return
        token = secrets.token_urlsafe(16)
        session = await run_in_threadpool(Session, given, model_factory)
        sessions[token] = session
        state: dict = {}
        try:
            await websocket.send_text(_dumps({**session.setup(), "token": token}))
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    text = "binary"  # answered as a malformed message
                # The update and its JSON in a worker thread: the event loop stays free.
                reply = await run_in_threadpool(_answer, session, text, state, token)
                await websocket.send_text(reply)
        except WebSocketDisconnect:
            pass
        finally:
            sessions.pop(token, None)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/download/{token}/{name}", download),
            WebSocketRoute("/ws", socket),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    app.state.sessions = sessions
    return app
