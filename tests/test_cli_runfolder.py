"""The command line as an attacker sees it: what its writes do to files, folders and earlier runs.

Each case was a real defect: modes widened, device nodes and FIFOs replaced, runs overwritten or
mixed, half-written folders, tracebacks on Ctrl-C, "internal error" on a full disk. Every case
asserts: the exit status, one line on stderr naming the file or the option, no traceback, no
"internal error", the modes and contents of files descend did not write unchanged, and the
earlier run intact. Commands run in-process through ``main([...])``; only what needs a real
process (signals while starting, SIGKILL) starts one.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from descend.cli import main
from descend.cli.errors import UsageError
from descend.cli.output import RunFolder

SRC = str(Path(__file__).resolve().parents[1] / "src")
TRAIN = ["--hidden", "3", "--epochs", "2", "--seed", "0", "-q", "--no-figures"]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and signals")


def cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``descend argv``, in-process."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *words: str) -> str:
    """The single line of stderr; it holds every one of ``words``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: its type, mode and content (a link's target)."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                content = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            else:
                content = None
            kind, bits = stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode)
            seen[os.path.relpath(path, folder)] = (kind, bits, content)
    return seen


def leftovers(parent: Path) -> list[str]:
    """Hidden partial or moved-aside folders of descend's in ``parent``."""
    return [n for n in os.listdir(parent) if ".partial-" in n or ".old-" in n]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny run on moons (module-wide; tests that change a run copy it first)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "moons:60", "--out", str(out), *TRAIN]) == 0
    return out


@pytest.fixture
def earlier_run(tmp_path, trained) -> Path:
    """A private copy of the trained run: the earlier run a new command must not destroy."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


@pytest.fixture
def home(tmp_path) -> Path:
    """A folder of the user's own private files, as a home folder holds."""
    folder = tmp_path / "home"
    folder.mkdir(mode=0o755)
    for name, text, bits in (
        (".netrc", "machine x password y\n", 0o600),
        (".bash_history", "ls\n", 0o600),
        ("notes.txt", "mine\n", 0o640),
    ):
        (folder / name).write_text(text)
        os.chmod(folder / name, bits)
    return folder


# --- 1. permissions: no mode changes on files descend did not create -------------------------


def test_train_into_a_home_folder_changes_nothing_even_with_force(capsys, home):
    before = snapshot(home)
    code, _, err = cli(capsys, "train", "moons:60", "--out", home, *TRAIN)
    assert code == 2
    one_line(err, f"--out {home}", "not empty", "--force")
    assert snapshot(home) == before
    code, _, err = cli(capsys, "train", "moons:60", "--out", home, *TRAIN, "--force")
    assert code == 2
    one_line(err, f"--out {home}", ".netrc", "did not write")
    assert snapshot(home) == before


OTHER_COMMANDS = {
    "compare": ["compare", "moons:60", "--batches", "full,8", "--epochs", "1", "--seeds", "0",
                "--hidden", "3", "--no-figures"],
    "surface": ["surface", "--batches", "full", "--epochs", "1", "--no-html"],
    "inspect": ["inspect", "RUN"],
    "landscape": ["landscape", "RUN", "--resolution", "3", "--method", "random"],
}  # fmt: skip


@pytest.mark.parametrize("command", OTHER_COMMANDS)
def test_other_commands_into_a_home_folder_change_nothing(capsys, home, trained, command):
    argv = [trained if a == "RUN" else a for a in OTHER_COMMANDS[command]]
    before = snapshot(home)
    code, _, err = cli(capsys, *argv, "--out", home)
    assert code == 2
    one_line(err, f"--out {home}", "--force")
    assert snapshot(home) == before


@POSIX
def test_force_replaces_a_run_keeping_the_modes_the_user_gave(capsys, earlier_run):
    os.chmod(earlier_run / "model.npz", 0o600)
    os.chmod(earlier_run, 0o750)
    (earlier_run / "curves.png").write_bytes(b"a figure of the earlier run")
    (earlier_run / "landscape").mkdir()
    (earlier_run / "landscape" / "landscape.json").write_text("{}")
    code, _, err = cli(capsys, "train", "moons:60", "--out", earlier_run, *TRAIN[:-4], "--seed",
                       "1", "-q", "--no-figures", "--force")  # fmt: skip
    assert code == 0, err
    assert mode(earlier_run / "model.npz") == 0o600 and mode(earlier_run) == 0o750
    umask = os.umask(0)
    os.umask(umask)
    assert mode(earlier_run / "config.toml") == 0o666 & ~umask  # a new file: the usual mode
    # One run, not two: nothing of the earlier run is left beside the new one.
    assert not (earlier_run / "curves.png").exists() and not (earlier_run / "landscape").exists()
    assert json.loads((earlier_run / "metrics.json").read_text())["seed"] == 1
    assert leftovers(earlier_run.parent) == []


@POSIX
def test_new_run_folders_and_files_follow_the_umask(capsys, tmp_path):
    umask = os.umask(0o027)
    try:
        code, _, err = cli(capsys, "train", "moons:60", "--out", tmp_path / "r", *TRAIN)
    finally:
        os.umask(umask)
    assert code == 0, err
    assert mode(tmp_path / "r") == 0o750
    assert {mode(p) for p in (tmp_path / "r").iterdir()} == {0o640}


@POSIX
def test_predict_replacing_a_private_file_keeps_it_private(capsys, tmp_path, trained):
    target = tmp_path / "p.csv"
    target.write_text("old\n")
    os.chmod(target, 0o600)
    code, out, err = cli(capsys, "predict", trained, "moons:20", "-o", target)
    assert code == 0, err
    assert mode(target) == 0o600
    assert target.read_text().startswith("prediction,") and str(target) in out


# --- 2. special files: written into, never replaced; links followed ---------------------------


@POSIX
def test_predict_through_a_symlink_writes_the_file_it_points_to(capsys, tmp_path, trained):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    code, _, err = cli(capsys, "predict", trained, "moons:20", "-o", link)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("prediction,") and mode(real) == 0o640


@POSIX
def test_predict_into_a_fifo_writes_into_it(capsys, tmp_path, trained):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # A reader that does not block: the CSV waits in the pipe's buffer until it is read.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        code, _, err = cli(capsys, "predict", trained, "moons:20", "-o", fifo)
        assert code == 0, err
        try:
            received = os.read(reader, 1 << 16)
        except BlockingIOError:
            received = b""
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received.startswith(b"prediction,") and received.count(b"\n") == 21


@POSIX
def test_predict_into_a_device_node_writes_into_it(capsys, tmp_path, trained):
    node = tmp_path / "null"
    try:  # a private copy of /dev/null (root only): the system's own is never put at risk
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    code, _, err = cli(capsys, "predict", trained, "moons:20", "-o", node)
    assert code == 0, err
    st = os.lstat(node)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


@POSIX
def test_predict_into_a_socket_is_one_line(capsys, tmp_path, trained):
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        code, _, err = cli(capsys, "predict", trained, "moons:20", "-o", path)
    finally:
        server.close()
    assert code == 2
    one_line(err, f"-o {path}", "socket")
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


# --- 3. an earlier run is never destroyed or mixed without being told -------------------------


@pytest.mark.parametrize("command", ["train", "compare"])
def test_an_existing_run_is_refused_and_kept(capsys, earlier_run, command):
    argv = ["train", "moons:60", *TRAIN] if command == "train" else OTHER_COMMANDS["compare"]
    before = snapshot(earlier_run)
    code, _, err = cli(capsys, *argv, "--out", earlier_run)
    assert code == 2
    one_line(err, f"--out {earlier_run}", "--force")
    assert snapshot(earlier_run) == before


def test_compare_with_force_into_a_train_folder_leaves_no_mixture(capsys, earlier_run):
    code, _, err = cli(capsys, *OTHER_COMMANDS["compare"], "--out", earlier_run, "--force")
    assert code == 0, err
    names = {p.name for p in earlier_run.iterdir()}
    assert "comparison.json" in names and not names & {"model.npz", "preprocess.json"}
    code, _, err = cli(capsys, "evaluate", earlier_run, "moons:20")
    assert code == 1
    one_line(err, str(earlier_run), "model.npz")


def test_default_folders_get_a_number_instead_of_replacing(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    # Two runs in the same second: the same default name, runs/moons-60-<time>.
    monkeypatch.setattr("descend.cli.train.time.strftime", lambda *_: "20260101-000000")
    assert cli(capsys, "train", "moons:60", *TRAIN)[0] == 0
    first = snapshot(tmp_path / "runs" / "moons-60-20260101-000000")
    code, out, err = cli(capsys, "train", "moons:60", *TRAIN[:-4], "--seed", "1", "-q",
                         "--no-figures")  # fmt: skip
    assert code == 0, err
    assert snapshot(tmp_path / "runs" / "moons-60-20260101-000000") == first
    second = tmp_path / "runs" / "moons-60-20260101-000000-2"
    assert json.loads((second / "metrics.json").read_text())["seed"] == 1
    assert second.name in out


@POSIX
def test_out_as_a_link_to_a_folder_writes_there_and_keeps_the_link(capsys, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "latest"
    link.symlink_to(real)
    code, _, err = cli(capsys, "train", "moons:60", "--out", link, *TRAIN)
    assert code == 0, err
    assert link.is_symlink() and (real / "model.npz").exists() and mode(real) == 0o700


def test_out_dot_in_an_empty_folder_writes_there_and_keeps_the_folder(capsys, monkeypatch,
                                                                     tmp_path):  # fmt: skip
    here = tmp_path / "here"
    here.mkdir(mode=0o751)
    inode = here.stat().st_ino
    monkeypatch.chdir(here)
    code, _, err = cli(capsys, "train", "moons:60", "--out", ".", *TRAIN)
    assert code == 0, err
    assert here.stat().st_ino == inode and mode(here) == 0o751
    assert (here / "model.npz").exists() and leftovers(tmp_path) == []


def test_run_folder_check_happens_before_any_work(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "model.npz").write_bytes(b"x")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UsageError, match="--force"):
        RunFolder(tmp_path / "taken")
    with pytest.raises(UsageError, match="is a file"):
        RunFolder(tmp_path / "a-file")
    assert RunFolder(tmp_path / "taken", default=True).target == tmp_path / "taken-2"


# --- 4. a folder is complete, or absent, or the earlier run ------------------------------------


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_keeps_the_earlier_run_and_says_so_in_one_line(capsys, monkeypatch,
                                                                  earlier_run):  # fmt: skip
    before = snapshot(earlier_run)
    monkeypatch.setattr(os, "fsync", _disk_full)  # every atomic write fsyncs its file
    code, _, err = cli(capsys, "train", "moons:60", "--out", earlier_run, *TRAIN, "--force")
    assert code == 1
    one_line(err, str(earlier_run), "disk is full", "unchanged")
    assert snapshot(earlier_run) == before and leftovers(earlier_run.parent) == []
    fresh = earlier_run.parent / "fresh"
    code, _, err = cli(capsys, "train", "moons:60", "--out", fresh, *TRAIN)
    assert code == 1
    one_line(err, str(fresh), "disk is full", "nothing was written")
    assert not fresh.exists() and leftovers(fresh.parent) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_disk_error_anywhere_is_one_line_not_an_internal_error(capsys, monkeypatch, code):
    def fail(args):
        raise OSError(code, os.strerror(code), "/somewhere/file.csv")

    monkeypatch.setattr("descend.cli.datasets_cmd.run", fail)
    status, _, err = cli(capsys, "datasets")
    assert status == 1
    one_line(err, "descend datasets: error:", os.strerror(code), "/somewhere/file.csv")


def test_disk_full_in_predict_is_one_line_and_keeps_the_file(capsys, monkeypatch, tmp_path,
                                                            trained):  # fmt: skip
    target = tmp_path / "p.csv"
    target.write_text("old\n")
    monkeypatch.setattr(os, "fsync", _disk_full)
    code, _, err = cli(capsys, "predict", trained, "moons:20", "-o", target)
    assert code == 1
    one_line(err, f"{target} (-o)", "disk is full")
    assert target.read_text() == "old\n"


@pytest.fixture
def small_disk(tmp_path):
    """A 24 KB tmpfs (root in a container can mount one; skipped elsewhere)."""
    point = tmp_path / "small"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(point)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], capture_output=True)


@POSIX
def test_a_real_full_disk_and_a_read_only_disk(capsys, small_disk):
    out = small_disk / "run"
    code, _, err = cli(capsys, "train", "moons:200", "--out", out, "--hidden", "32", *TRAIN[2:])
    assert code == 1
    one_line(err, str(out), "disk is full")
    assert os.listdir(small_disk) == []
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, _, err = cli(capsys, "train", "moons:60", "--out", out, *TRAIN)
    assert code == 1
    one_line(err, str(out), "read-only")
    assert os.listdir(small_disk) == []


def _ctrl_c(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_while_writing_leaves_the_earlier_run_or_nothing(capsys, monkeypatch,
                                                                earlier_run):  # fmt: skip
    before = snapshot(earlier_run)
    monkeypatch.setattr("descend.cli.train.build_report", _ctrl_c)  # the last file written
    code, _, err = cli(capsys, "train", "moons:60", "--out", earlier_run, *TRAIN, "--force")
    assert code == 130
    one_line(err, f"interrupted while writing {earlier_run}", "unchanged")
    assert snapshot(earlier_run) == before and leftovers(earlier_run.parent) == []
    fresh = earlier_run.parent / "fresh"
    code, _, err = cli(capsys, "train", "moons:60", "--out", fresh, *TRAIN)
    assert code == 130
    one_line(err, f"interrupted while writing {fresh}", "nothing was written")
    assert not fresh.exists() and leftovers(fresh.parent) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_partial_folders_of_killed_runs_are_removed_by_the_next_run(capsys, tmp_path):
    dead = tmp_path / f".run.partial-{_dead_pid()}-0000"
    alive = tmp_path / f".run.partial-{os.getppid()}-0000"  # another run, still going
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "model.npz").write_bytes(b"half")
    assert cli(capsys, "train", "moons:60", "--out", tmp_path / "run", *TRAIN)[0] == 0
    assert not dead.exists() and alive.exists()


def _start(argv: list[str], **kwargs) -> subprocess.Popen:
    """The command in a new process, as from a terminal (Ctrl-C raises KeyboardInterrupt)."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": SRC}
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs,
    )  # fmt: skip


# The console script's code (the entry module), so the test does not depend on how descend
# was installed. "ready" says the entry module is loaded: a Ctrl-C before that lands in
# Python's own start-up, which no program can handle.
ENTRY = (
    "import os, sys; from _descend_entry import main; os.write(1, b'ready\\n'); "
    "sys.argv[0] = 'descend'; sys.exit(main())"
)


@POSIX
@pytest.mark.parametrize("delay", [0.03, 0.15])
def test_ctrl_c_while_the_command_starts_is_quiet(tmp_path, delay):
    # Importing NumPy and descend takes a few tenths of a second: the Ctrl-C lands there.
    proc = _start([sys.executable, "-c", ENTRY, "train", "moons:60", "--epochs", "1000000",
                   "--out", str(tmp_path / "r"), "-q", "--no-figures"])  # fmt: skip
    assert proc.stdout.readline() == "ready\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    one_line(err, "interrupted")


@POSIX
def test_ctrl_c_after_the_command_finished_does_not_kill_it():
    # The run is complete when main returns: a Ctrl-C while Python shuts down changes nothing,
    # and the exit status stays the command's (0), not death by the signal.
    script = textwrap.dedent("""\
        import os, signal, sys, time
        from descend.cli import run_as_program
        status = run_as_program(["--version"])
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        sys.exit(status)
    """)
    proc = _start([sys.executable, "-c", script])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.startswith("descend ") and err == ""


def _wait_for_writing(proc: subprocess.Popen, parent: Path) -> None:
    """Return once the process has begun writing its run folder (its partial sibling exists)."""
    deadline = time.monotonic() + 120
    while not leftovers(parent) and proc.poll() is None:
        assert time.monotonic() < deadline, "the run folder was never written"
        time.sleep(0.002)


@POSIX
def test_a_real_ctrl_c_while_the_folder_is_written(earlier_run):
    before = snapshot(earlier_run)
    # With figures, so that writing the folder takes a while.
    argv = ["train", "moons:60", "--out", str(earlier_run), "--force", *TRAIN[:-1]]
    proc = _start([sys.executable, "-m", "descend", *argv])
    _wait_for_writing(proc, earlier_run.parent)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    # 130; rarely (about 1 in 20 here) CPython ends a process whose KeyboardInterrupt was handled
    # by the signal anyway, after descend's line: a shell shows 130 for both.
    assert proc.returncode in (130, -signal.SIGINT), err
    one_line(err, f"interrupted while writing {earlier_run}", "unchanged")
    assert snapshot(earlier_run) == before and leftovers(earlier_run.parent) == []


@POSIX
def test_sigkill_while_the_folder_is_written_keeps_the_earlier_run(capsys, earlier_run):
    before = snapshot(earlier_run)
    argv = ["train", "moons:60", "--out", str(earlier_run), "--force", *TRAIN[:-1]]
    proc = _start([sys.executable, "-m", "descend", *argv])
    try:
        _wait_for_writing(proc, earlier_run.parent)
        proc.kill()
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(earlier_run) == before
    # The next run into the same folder clears the killed run's partial folder.
    code, _, err = cli(capsys, "train", "moons:60", "--out", earlier_run, *TRAIN, "--force")
    assert code == 0, err
    assert leftovers(earlier_run.parent) == [] and (earlier_run / "report.html").exists()
