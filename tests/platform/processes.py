"""Helpers for tests that run the project's real settings in a child process.

The test process itself runs on `tests.settings` (and maybe PostgreSQL and Redis); anything that
must see `incidencias.settings` as a deployment would see them runs in a child whose environment
is built from nothing: PATH with the virtualenv first, the locale, and what the test passes.
No `.env` file is read (ENV_FILE is empty) and local state lives in the test's own folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(sys.executable).parent

_INHERITED = ("HOME", "LANG", "LC_ALL", "TMPDIR")

_SETTINGS_PROBE = """
import json, sys
import django
from django.conf import settings
django.setup()
from incidencias.celery import app
values = {name: getattr(settings, name) for name in sys.argv[1:]}
values["celery"] = {"broker_url": app.conf.broker_url, "result_backend": app.conf.result_backend}
print(json.dumps(values, default=str))
"""


def base_env(var_dir: Path, **values: str) -> dict:
    """An environment with none of the developer's settings: no DATABASE_URL, no REDIS_URL."""
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env["PATH"] = os.pathsep.join([str(BIN), os.environ.get("PATH", "/usr/bin:/bin")])
    env["DJANGO_SETTINGS_MODULE"] = "incidencias.settings"
    env["ENV_FILE"] = ""
    env["VAR_DIR"] = str(var_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def run_python(code: str, env: dict, *args: str, timeout: float = 120):
    """Run `python -c code args…` in the project folder; returns the CompletedProcess."""
    return subprocess.run(
        [PYTHON, "-c", code, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def settings_of(env: dict, *names: str) -> dict:
    """The named settings, and the Celery app's broker and result store, as a child sees them."""
    result = run_python(_SETTINGS_PROBE, env, *names)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
