"""incidencias.settings as a deployment sees it, each case in a child process of its own."""

import secrets
import subprocess
from pathlib import Path

import pytest

from sso.crypto import generate_key

from .processes import BASE_DIR, PYTHON, base_env, run_python, settings_of

SETUP = "import django; django.setup()"


def production_env(var_dir: Path, **values: str) -> dict:
    env = base_env(
        var_dir,
        SECRET_KEY=secrets.token_urlsafe(50),
        ENCRYPTION_KEYS=f"k1:{generate_key()}",
        ALLOWED_HOSTS="portal.example.com",
    )
    env.update(values)
    return env


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# --- Refusing to start ----------------------------------------------------------------------


@pytest.mark.parametrize("debug", [None, "0"])
def test_it_refuses_to_start_without_secret_key_in_production(tmp_path, debug):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    if debug is not None:
        env["DEBUG"] = debug

    result = run_python(SETUP, env)

    assert result.returncode != 0
    assert last_line(result.stderr) == (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off."
    )


def test_it_refuses_to_start_without_encryption_keys_in_production(tmp_path):
    env = production_env(tmp_path)
    del env["ENCRYPTION_KEYS"]

    result = run_python(SETUP, env)

    assert result.returncode != 0
    assert last_line(result.stderr) == (
        "django.core.exceptions.ImproperlyConfigured: "
        "ENCRYPTION_KEYS must be set when DEBUG is off."
    )


def test_it_starts_without_keys_in_debug(tmp_path):
    env = base_env(tmp_path, DEBUG="1")

    values = settings_of(env, "DEBUG", "SECRET_KEY")

    assert values["DEBUG"] is True
    assert values["SECRET_KEY"]


def test_it_passes_the_deploy_checks_with_production_settings(tmp_path):
    env = production_env(tmp_path, DEBUG="0")

    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert last_line(result.stdout) == "System check identified no issues (0 silenced)."


def test_it_keeps_debug_off_unless_set(tmp_path):
    env = production_env(tmp_path)
    assert "DEBUG" not in env

    values = settings_of(env, "DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE")

    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True


# --- Database, cache and broker -------------------------------------------------------------


def test_it_runs_on_sqlite_locmem_and_the_filesystem_broker_by_default(tmp_path):
    values = settings_of(
        production_env(tmp_path),
        "DATABASES",
        "CACHES",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "CELERY_BROKER_TRANSPORT_OPTIONS",
    )

    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(tmp_path / "db.sqlite3")
    assert values["CACHES"]["default"]["BACKEND"] == (
        "django.core.cache.backends.locmem.LocMemCache"
    )
    assert values["CELERY_BROKER_URL"] == "filesystem://"
    assert values["CELERY_RESULT_BACKEND"] == f"file://{tmp_path / 'celery' / 'results'}"
    assert values["celery"] == {
        "broker_url": "filesystem://",
        "result_backend": f"file://{tmp_path / 'celery' / 'results'}",
    }
    # Every folder of the embedded broker is under VAR_DIR, none relative to the working dir.
    options = values["CELERY_BROKER_TRANSPORT_OPTIONS"]
    for name in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        assert Path(options[name]).parent == tmp_path / "celery", name


def test_it_creates_var_dir_for_the_sqlite_database(tmp_path):
    var_dir = tmp_path / "new" / "var"
    connect = f"{SETUP}; from django.db import connection; connection.ensure_connection()"

    result = run_python(connect, production_env(var_dir))

    assert result.returncode == 0, result.stderr
    assert (var_dir / "db.sqlite3").is_file()


def test_it_creates_the_embedded_broker_folders_when_the_celery_app_is_configured(tmp_path):
    var_dir = tmp_path / "fresh"

    settings_of(production_env(var_dir))

    for folder in ("queue", "processed", "control", "results"):
        assert (var_dir / "celery" / folder).is_dir(), folder


def test_it_uses_postgresql_with_persistent_checked_connections_for_database_url(tmp_path):
    env = production_env(
        tmp_path, DATABASE_URL="postgres://portal:s3cret@db.example.invalid:5433/incidencias"
    )

    database = settings_of(env, "DATABASES")["DATABASES"]["default"]

    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == (
        "db.example.invalid",
        5433,
        "incidencias",
    )
    assert (database["USER"], database["PASSWORD"]) == ("portal", "s3cret")
    assert database["CONN_MAX_AGE"] > 0
    assert database["CONN_HEALTH_CHECKS"] is True


def test_it_uses_redis_for_cache_broker_and_results_for_redis_url(tmp_path):
    url = "redis://cache.example.invalid:6379/3"
    env = production_env(tmp_path, REDIS_URL=url)

    values = settings_of(env, "CACHES", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")

    cache = values["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == url
    assert values["CELERY_BROKER_URL"] == url
    assert values["CELERY_RESULT_BACKEND"] == url
    assert values["celery"] == {"broker_url": url, "result_backend": url}
    assert not (tmp_path / "celery").exists()


# --- Secrets and the env file ---------------------------------------------------------------


def test_it_reads_secret_key_from_the_file_named_by_secret_key_file(tmp_path):
    key = secrets.token_urlsafe(50)
    key_file = tmp_path / "secret_key"
    key_file.write_text(f"{key}\n")
    env = production_env(tmp_path, SECRET_KEY_FILE=str(key_file))
    del env["SECRET_KEY"]

    assert settings_of(env, "SECRET_KEY")["SECRET_KEY"] == key


def test_it_refuses_to_start_with_an_unreadable_secret_file(tmp_path):
    env = production_env(tmp_path, SECRET_KEY_FILE=str(tmp_path / "missing"))
    del env["SECRET_KEY"]

    result = run_python(SETUP, env)

    assert result.returncode != 0
    assert last_line(result.stderr).startswith(
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY_FILE: cannot read"
    )


def test_it_reads_the_file_named_by_env_file_below_the_environment(tmp_path):
    env_file = tmp_path / "portal.env"
    env_file.write_text("TIME_ZONE=Europe/Madrid\nALLOWED_HOSTS=from-the-file.example.com\n")
    env = production_env(tmp_path, ENV_FILE=str(env_file))

    values = settings_of(env, "TIME_ZONE", "ALLOWED_HOSTS")

    assert values["TIME_ZONE"] == "Europe/Madrid"
    assert values["ALLOWED_HOSTS"] == ["portal.example.com"]


def test_it_prepares_hand_written_statements_unless_told_not_to(tmp_path):
    url = "postgres://portal@db.example.invalid/incidencias"

    default = settings_of(production_env(tmp_path, DATABASE_URL=url), "DATABASES")
    disabled = settings_of(
        production_env(tmp_path, DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="0"), "DATABASES"
    )
    bound = settings_of(
        production_env(tmp_path, DATABASE_URL=url, DATABASE_SERVER_SIDE_BINDING="1"), "DATABASES"
    )

    assert default["DATABASES"]["default"]["OPTIONS"] == {"prepare_threshold": 5}
    assert "prepare_threshold" not in disabled["DATABASES"]["default"]["OPTIONS"]
    assert bound["DATABASES"]["default"]["OPTIONS"] == {
        "prepare_threshold": 5,
        "server_side_binding": True,
    }


def test_the_generated_env_gives_a_signing_key_to_honcho_and_to_settings(tmp_path):
    """`make run` writes .env with `python -m incidencias.envfile`; honcho exports it to web,
    worker and beat, and settings.py also reads it through ENV_FILE: both must get the PEM."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from honcho.environ import parse

    salida = subprocess.run(
        [PYTHON, "-m", "incidencias.envfile"], cwd=BASE_DIR, capture_output=True, text=True
    )
    assert salida.returncode == 0, salida.stderr
    env_file = tmp_path / ".env"
    env_file.write_text(salida.stdout)

    por_honcho = parse(salida.stdout)["OIDC_RSA_PRIVATE_KEY"]
    assert load_pem_private_key(por_honcho.encode(), None).key_size == 2048

    env = base_env(tmp_path, ENV_FILE=str(env_file))
    for nombre in ("DEBUG", "SECRET_KEY", "ENCRYPTION_KEYS", "OIDC_RSA_PRIVATE_KEY"):
        env.pop(nombre, None)
    por_settings = settings_of(env, "OIDC_RSA_PRIVATE_KEY")["OIDC_RSA_PRIVATE_KEY"]
    assert load_pem_private_key(por_settings.encode(), None).key_size == 2048
