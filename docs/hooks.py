"""Run the guide's code when the documentation is built, and put what it prints and draws in.

MkDocs loads this file as a hook (``hooks:`` in ``mkdocs.yml``); ``tests/test_docs.py`` imports
it to run the same pages (and the README) without MkDocs. For each page of :data:`EXECUTED` (the
home page and the guide), in order:

* each fenced ``python`` block is executed (one namespace per page, in a fresh temporary working
  directory, stdout and stderr captured); what it prints is inserted after it as an "output"
  block, and every image file it writes (``.png``, ``.svg``, ``.gif``, ``.jpg``) is added to the
  site under ``figures/<page>/`` and shown after it;
* each fenced ``console`` block has its ``$ descend ...`` lines run by ``descend.cli.main``, in
  the same working directory, and is shown with their output;
* in the prose, ``{{ expression }}`` or ``{{ expression:format }}`` is replaced by the value of the
  expression (an f-string field) in the page's namespace at that point of the page, so every
  number the text quotes comes from the code above it.

A block that raises, a console command that exits non-zero and an expression that cannot be
evaluated stop the build with the page, the line and the traceback.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shlex
import tempfile
import textwrap
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

FIGURE_SUFFIXES = (".png", ".svg", ".gif", ".jpg", ".jpeg")

# A fenced block at the start of a line (possibly indented, e.g. inside an admonition).
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)(?P=fence)[ \t]*$",
    re.M | re.S,
)
FIELD = re.compile(r"\{\{(.+?)\}\}")
log = logging.getLogger("mkdocs.hooks.descend")


class DocsCodeError(RuntimeError):
    """A code block, console command or ``{{ }}`` field of a page failed."""


@dataclass
class Block:
    """One fenced block: its language, its source (dedented) and where it starts."""

    language: str
    info: str
    indent: str
    source: str
    line: int  # the line of the first source line, counted from 1


@dataclass
class PageResult:
    """A page after running its code."""

    markdown: str
    figures: dict[str, bytes] = field(default_factory=dict)  # path (from the page) -> content
    namespace: dict = field(default_factory=dict, repr=False)
    blocks_run: int = 0
    timings: list = field(default_factory=list)  # (line, seconds) of each python block


def split_page(text: str) -> list[str | Block]:
    """The page as prose strings and fenced :class:`Block` objects, in order."""
    parts: list[str | Block] = []
    pos = 0
    for m in FENCE.finditer(text):
        parts.append(text[pos : m.start()])
        indent = m.group("indent")
        body = m.group("body")
        if indent:
            body = "".join(
                line[len(indent) :] if line.startswith(indent) else line.lstrip()
                for line in body.splitlines(keepends=True)
            )
        info = m.group("info").strip()
        language = info.split()[0].lower() if info else ""
        line = text.count("\n", 0, m.start()) + 2
        parts.append(Block(language, info, indent, body, line))
        pos = m.end()
    parts.append(text[pos:])
    return parts


def is_runnable(block: Block) -> bool:
    """Python blocks run; console blocks run their ``$ descend`` lines; the rest is shown."""
    if block.language == "python":
        return True
    return block.language == "console" and any(
        line.startswith("$ descend") for line in block.source.splitlines()
    )


def runnable_blocks(text: str) -> list[Block]:
    """The blocks of a page that :func:`run_page` executes."""
    return [p for p in split_page(text) if isinstance(p, Block) and is_runnable(p)]


def prose(text: str) -> str:
    """The page without its fenced blocks (what the reader reads as text)."""
    return "".join(p for p in split_page(text) if isinstance(p, str))


@contextlib.contextmanager
def _working_directory(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and p.suffix.lower() in FIGURE_SUFFIXES:
            st = p.stat()
            out[p] = (st.st_mtime_ns, st.st_size)
    return out


def _fence(body: str, info: str, indent: str) -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    text = f"{ticks}{info}\n{body.rstrip()}\n{ticks}"
    return textwrap.indent(text, indent) if indent else text


def _substitute(text: str, ns: dict, name: str, first_line: int) -> str:
    def value(m: re.Match) -> str:
        expr = m.group(1).strip()
        try:
            return str(eval("f" + repr("{" + expr + "}"), ns))  # noqa: S307 - the page's own code
        except Exception as exc:
            line = first_line + text.count("\n", 0, m.start())
            raise DocsCodeError(
                f"{name}:{line}: {{{{ {expr} }}}} could not be evaluated: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    return FIELD.sub(value, text)


def _run_python(block: Block, ns: dict, name: str) -> str:
    # Padding makes the line numbers of a traceback those of the Markdown file.
    code = compile("\n" * (block.line - 1) + block.source, name, "exec")
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            exec(code, ns)  # noqa: S102 - running the guide's code is the point
    except Exception as exc:
        raise DocsCodeError(
            f"{name}:{block.line}: the python block failed:\n{traceback.format_exc()}"
        ) from exc
    return out.getvalue()


def _run_console(block: Block, name: str) -> str:
    from descend.cli import main

    shown = []
    lines = block.source.splitlines()
    i = 0
    while i < len(lines):
        first = i
        command = lines[i]
        shown.append(lines[i])
        # A line ending in a backslash continues on the next one, as in a shell.
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1] + " " + lines[i]
            shown.append(lines[i])
        i += 1
        if not command.startswith("$ descend"):
            continue
        argv = shlex.split(command[2:], comments=True)[1:]
        out = io.StringIO()  # stdout and stderr together, in the order a terminal shows them
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main(argv)
        if status != 0:
            raise DocsCodeError(
                f"{name}:{block.line + first}: `{command[2:]}` exited with status {status}:\n"
                f"{out.getvalue()}"
            )
        if out.getvalue().strip():
            shown.append(out.getvalue().rstrip("\n"))
    return "\n".join(shown)


def run_page(
    text: str, name: str = "page.md", workdir: str | Path | None = None, figure_dir: str = ""
) -> PageResult:
    """Run a page's code in order and return the Markdown with outputs, figures and values.

    Parameters
    ----------
    text : str
        The page's Markdown (without front matter).
    name : str
        The page's name, for error messages and tracebacks.
    workdir : path, optional
        Where the code runs (default: a new temporary directory, removed afterwards).
    figure_dir : str
        The folder, relative to the page, that figures are linked from.

    Returns
    -------
    PageResult
    """
    import matplotlib

    matplotlib.use("Agg")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="descend-docs-") as tmp:
            return run_page(text, name, tmp, figure_dir)
    root = Path(workdir).resolve()
    ns: dict = {"__name__": "__main__"}
    result = PageResult("", namespace=ns)
    pieces = []
    line = 1
    with _working_directory(root):
        for part in split_page(text):
            if isinstance(part, str):
                pieces.append(_substitute(part, ns, name, line))
                line += part.count("\n")
                continue
            line = part.line + part.source.count("\n")
            if not is_runnable(part):
                pieces.append(_fence(part.source, part.info, part.indent))
                continue
            result.blocks_run += 1
            if part.language == "console":
                pieces.append(_fence(_run_console(part, name), part.info, part.indent))
                continue
            before = _snapshot(root)
            began = time.perf_counter()
            printed = _run_python(part, ns, name)
            result.timings.append((part.line, time.perf_counter() - began))
            pieces.append(_fence(part.source, part.info, part.indent))
            if printed.strip():
                info = 'text title="output"'
                pieces.append("\n" + _fence(printed, info, part.indent))
            after = _snapshot(root)
            for path in sorted(p for p, stamp in after.items() if before.get(p) != stamp):
                rel = path.relative_to(root).as_posix()
                link = f"{figure_dir}/{rel}" if figure_dir else rel
                result.figures[link] = path.read_bytes()
                alt = path.stem.replace("-", " ").replace("_", " ")
                image = f"![{alt}]({link}){{ loading=lazy }}"
                pieces.append("\n\n" + textwrap.indent(image, part.indent))
    result.markdown = "".join(pieces)
    return result


# --- MkDocs hooks ----------------------------------------------------------------------------

_RESULTS: dict[str, str] = {}

# The pages whose code runs at build time (paths from docs/; a folder ends in "/"). Other pages'
# code blocks are shown as written.
EXECUTED = ("index.md", "guide/")


def is_executed(src_uri: str) -> bool:
    """Whether the build runs the code of the page at ``src_uri`` (relative to docs/)."""
    return any(src_uri == p or (p.endswith("/") and src_uri.startswith(p)) for p in EXECUTED)


def on_files(files, config):
    """Run every page that has code; register the figures it drew as files of the site."""
    from mkdocs.structure.files import File
    from mkdocs.utils import meta

    _RESULTS.clear()
    for file in list(files.documentation_pages()):
        if not is_executed(file.src_uri):
            continue
        text, _ = meta.get_data(Path(file.abs_src_path).read_text(encoding="utf-8"))
        if not runnable_blocks(text) and not FIELD.search(prose(text)):
            continue
        page_dir = Path(file.src_uri).parent
        figure_dir = f"figures/{Path(file.src_uri).stem}"
        began = time.perf_counter()
        result = run_page(text, file.src_uri, figure_dir=figure_dir)
        log.info(
            "ran the code of %s: %d blocks, %d figures, %.1f s",
            file.src_uri,
            result.blocks_run,
            len(result.figures),
            time.perf_counter() - began,
        )
        _RESULTS[file.src_uri] = result.markdown
        for link, content in result.figures.items():
            uri = (page_dir / link).as_posix()
            files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    """The page with its outputs, figures and values in place."""
    return _RESULTS.get(page.file.src_uri, markdown)


# Sphinx roles in the numpydoc docstrings (":func:`fit`", ":class:`~descend.Tensor`") would
# show as text; the reference pages show them as code, with "~" meaning "the last part only".
_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|obj|exc):<code>(~?)([^<]*)</code>")


# reST ".. math::" directives: the formula that follows (indented, so already a code block) is
# shown as it is written; a one-line directive becomes a code block of its own.
_MATH_ALONE = re.compile(r"<p>\.\. math::</p>\s*")
_MATH_INLINE = re.compile(r"<p>\.\. math:: (.*?)</p>", re.S)


def on_page_content(html, page, config, files):
    """Sphinx roles and math directives from docstrings as plain code."""

    def code(m: re.Match) -> str:
        target = m.group(2).split(".")[-1] if m.group(1) else m.group(2)
        return f"<code>{target}</code>"

    html = _ROLE.sub(code, html)
    html = _MATH_ALONE.sub("", html)
    return _MATH_INLINE.sub(r'<div class="highlight"><pre><code>\1</code></pre></div>', html)
