"""`make run`'s supervisor: honcho starts web, worker and beat on the embedded defaults
(SQLite, kombu's filesystem broker, file:// results), they serve, and Ctrl-C stops them all."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from sso.crypto import generate_key

from .processes import BASE_DIR, PYTHON, base_env, run_python

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60
SHUTDOWN_SECONDS = 30

PING = """
import django
django.setup()
from incidencias.tasks import ping
print(ping.delay().get(timeout=60))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthz(port: int):
    """The body of GET /healthz once it answers 200; None until then."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return json.loads(response.read())
    except OSError:  # nothing listening yet, or an HTTPError (503 while a check fails)
        return None


def wait_for(what: str, probe, honcho, log: Path, seconds: float = STARTUP_SECONDS):
    """Poll `probe` until it returns something truthy; fail early if honcho exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        if honcho.poll() is not None:
            pytest.fail(f"honcho exited ({honcho.returncode}) before {what}:\n{log.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"no {what} within {seconds} s:\n{log.read_text()}")


def in_log(log: Path, pattern: str):
    return re.search(pattern, log.read_text(), re.MULTILINE)


def process(pid: int):
    """(parent pid, state, start time) of a live process, or None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    state, ppid, starttime = fields[0], int(fields[1]), fields[19]
    if state in ("Z", "X"):  # exited, only not yet reaped
        return None
    return ppid, state, starttime


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def descendants(root: int) -> dict:
    """{pid: start time} of every live process below `root`."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := process(int(entry.name))):
            children.setdefault(info[0], []).append((int(entry.name), info[2]))
    found, todo = {}, [root]
    while todo:
        for pid, starttime in children.get(todo.pop(), []):
            found[pid] = starttime
            todo.append(pid)
    return found


def alive(pids: dict) -> list:
    """The pids still running as the same process (a reused pid is another process)."""
    return [
        pid for pid, starttime in pids.items() if (info := process(pid)) and info[2] == starttime
    ]


def kill_all(honcho, pids: dict):
    """SIGKILL whatever is left: honcho's group and the group of every process below it
    (honcho starts each Procfile line in a session of its own)."""
    groups = {honcho.pid}
    for pid in alive(pids):
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(pid))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    for pid in alive(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    honcho.wait(timeout=SHUTDOWN_SECONDS)


def test_it_starts_web_worker_and_beat_and_stops_them_all_on_ctrl_c(tmp_path):
    port = free_port()
    var_dir = tmp_path / "var"  # created by the code, as a fresh checkout's would be
    env = base_env(
        var_dir,
        DEBUG="1",
        SECRET_KEY="supervisor-smoke-test-key",
        ENCRYPTION_KEYS=f"k1:{generate_key()}",
        PORT=str(port),
    )
    assert "DATABASE_URL" not in env
    assert "REDIS_URL" not in env
    migrate = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    # An empty env file: honcho would otherwise load a developer's .env over this environment.
    honcho_env = tmp_path / "honcho.env"
    honcho_env.write_text("")
    log = tmp_path / "honcho.log"
    with log.open("wb") as output:
        honcho = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "incidencias.supervisor",
                "start",
                "-f",
                "Procfile",
                "-e",
                str(honcho_env),
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
    pids = {}
    try:
        body = wait_for("a 200 from /healthz", lambda: healthz(port), honcho, log)
        assert body["status"] == "ok"
        assert {name: check["ok"] for name, check in body["checks"].items()} == {
            "database": True,
            "cache": True,
            "broker": True,
        }
        wait_for("worker ready", lambda: in_log(log, r"^\S+ worker\.1 +\| .*ready\.$"), honcho, log)
        wait_for(
            "beat", lambda: in_log(log, r"^\S+ beat\.1 +\| .*beat: Starting\.\.\.$"), honcho, log
        )
        assert in_log(
            log, rf"^\S+ web\.1 +\| Starting development server at http://127\.0\.0\.1:{port}/$"
        )
        # The embedded defaults, in VAR_DIR.
        assert in_log(log, r"^\S+ worker\.1 +\| .*\.> transport: +filesystem://")
        results = re.escape(f"file://{var_dir}/celery/results")
        assert in_log(log, rf"^\S+ worker\.1 +\| .*\.> results: +{results}$")
        assert (var_dir / "db.sqlite3").is_file()

        ping = run_python(PING, env, timeout=90)
        assert ping.returncode == 0, ping.stderr
        assert ping.stdout.strip() == "pong"
        wait_for(
            "the worker's record of the ping",
            lambda: in_log(log, r"^\S+ worker\.1 +\| .*Task incidencias\.ping\[.*\] succeeded"),
            honcho,
            log,
        )

        pids = descendants(honcho.pid)
        for name in ("runserver", "celery -A incidencias worker", "celery -A incidencias beat"):
            assert any(name in cmdline(pid) for pid in alive(pids)), name

        os.killpg(honcho.pid, signal.SIGINT)  # Ctrl-C

        honcho.wait(timeout=SHUTDOWN_SECONDS)
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while alive(pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive(pids) == [], log.read_text()
        # Every process stopped on its own: none had to be killed.
        assert not in_log(log, r"SIGKILL"), log.read_text()
        assert in_log(log, r"^\S+ worker\.1 +\| .*worker: Warm shutdown"), log.read_text()
        assert in_log(log, r"^\S+ system +\| SIGINT received$")
        for name in ("web", "worker", "beat"):
            assert in_log(log, rf"^\S+ system +\| {name}\.1 stopped "), name
    finally:
        pids.update(descendants(honcho.pid) if honcho.poll() is None else {})
        kill_all(honcho, pids)
