"""Benchmark: Bearer-authenticated GET /api/user with each kind of token, against a baseline.

    .venv/bin/python bench/auth.py [--rounds 5] [--duration 5] [--only jwt] [--keep-db] [--help]

The portal's `/api/user` (`sso.api.bearer.BearerAuthentication`, then the user with their
second factor, groups and permissions) is set, for each kind of Bearer, against
`bench/baseline_auth.py`: a DRF view that checks the same credential as strictly and runs only
the SQL that kind needs, in one statement through a plain psycopg cursor:

- user token `"<id>|<secret>"` (`sso.tokens.token_emitir`): the token joined to its user;
- OAuth2 access token (scope `profile`, obtained through the real authorize and token
  endpoints for a client of `sso.oauth.cliente_crear`, so stored as the server stores it):
  the token by its SHA-256 joined to its user and client;
- JWT (`sso.jwt.jwt_emitir`, RS256 with a key generated for the run): PyJWT's verification,
  then the user by primary key.

Targets: portal >= 60% of the baseline's requests/s for user and OAuth2 tokens, >= 70% for JWTs.
Before timing, portal and baseline must answer 200 with equal `data` for every kind, and both
must refuse a tampered token of every kind.

Same gunicorn (3 sync workers by default, see bench/api.py for why), same database of its own
(`incidencias_bench_auth`, dropped and recreated, dropped afterwards unless --keep-db),
interleaved rounds (ABBA) per kind, medians and ratios, CPU per request from /proc, CPU used by
other processes reported. Missing a target prints FAIL; an error (non-2xx from wrk, a wrong
answer, a crash) exits 1.
"""

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import psycopg  # noqa: E402

from bench.api import (  # noqa: E402
    WRK_SCRIPT,
    BenchError,
    Run,
    drop_database,
    environment,
    free_port,
    measure,
    median_of,
    recreate_database,
    report_throughput,
    settle,
    start_gunicorn,
    stop_gunicorn,
    verdict,
)

PORTAL_PATH = "/api/user"
BASELINE_PATH = "/bench/baseline-user"
DB_NAME = "incidencias_bench_auth"
LOGIN = "bauth"
REDIRECT = "https://app.example.com/callback"
KINDS = {"user": "user token", "oauth": "OAuth2 token", "jwt": "JWT"}
TARGETS = {"user": 0.60, "oauth": 0.60, "jwt": 0.70}

DONE = WRK_SCRIPT[WRK_SCRIPT.index("done = ") :] % {}  # the same BENCH line bench/api.py parses

GET_SCRIPT = """\
wrk.method = "GET"
wrk.headers["Authorization"] = %(authorization)s

"""


# --- Setup -----------------------------------------------------------------------------------


def signing_key() -> str:
    """A fresh RSA key (PEM) for OIDC_RSA_PRIVATE_KEY, which signs the JWTs."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def oauth_token(usuario) -> str:
    """An access token with scope `profile`, through the authorize and token endpoints (PKCE),
    for a first-party public client: stored exactly as the server stores its tokens."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlencode, urlparse

    from django.test import Client

    from sso.oauth import cliente_crear

    cliente, _ = cliente_crear(
        nombre="Bench",
        redirect_uris=REDIRECT,
        confidencial=False,
        primera_parte=True,
        creado_por=None,
    )
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
        .rstrip(b"=")
        .decode("ascii")
    )
    browser = Client(HTTP_HOST="localhost")
    browser.force_login(usuario)
    query = {
        "client_id": cliente.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "bench",
        "scope": "profile",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = browser.get("/oauth/authorize?" + urlencode(query))
    location = response.headers.get("Location", "")
    if response.status_code != 302 or not location.startswith(REDIRECT):
        raise BenchError(f"/oauth/authorize answered {response.status_code} {location!r}")
    code = parse_qs(urlparse(location).query)["code"][0]
    response = Client(HTTP_HOST="localhost").post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": cliente.client_id,
            "code_verifier": verifier,
        },
    )
    if response.status_code != 200 or response.json().get("scope") != "profile":
        raise BenchError(f"/oauth/token answered {response.status_code} {response.content!r}")
    return response.json()["access_token"]


def seed() -> dict[str, str]:
    """One user in the registration group (two permissions), and a token of each kind."""
    from sso.jwt import jwt_emitir, operador_alias
    from sso.models import Departamento, Usuario
    from sso.registro import grupo_registro
    from sso.tokens import token_emitir

    usuario = Usuario.objects.create_user(
        username=LOGIN,
        email=f"{LOGIN}@example.com",
        password=None,
        nombre="Bench A.",
        cedula="1-0888-0888",
        departamento=Departamento.objects.create(nombre="Soporte"),
        phone="+50688880000",
    )
    usuario.groups.add(grupo_registro())
    _, user_token = token_emitir(usuario=usuario, ip="127.0.0.1")
    jwt_token, _ = jwt_emitir(usuario=usuario, operador=operador_alias(usuario=usuario))
    return {"user": user_token, "oauth": oauth_token(usuario), "jwt": jwt_token}


def tampered(token: str) -> str:
    """The token with its last character changed: a wrong secret, checksum or signature."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


# --- HTTP ------------------------------------------------------------------------------------


def get(port: int, path: str, token: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {"raw": raw[:200].decode(errors="replace")}


def wait_ready(proc, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            status, answer = get(port, PORTAL_PATH, "0|x")
        except OSError:
            time.sleep(0.2)
            continue
        if status == 401:  # up, and refusing a bogus token
            return
        raise BenchError(f"/api/user answered {status} while starting: {answer}")
    raise BenchError("gunicorn did not answer within 30 s")


def check_answers(port: int, tokens: dict[str, str]) -> None:
    """For every kind: 200 with equal bodies from both, the seed's data; a tampered token 401."""
    for kind, token in tokens.items():
        answers = {}
        for label, path in (("portal", PORTAL_PATH), ("baseline", BASELINE_PATH)):
            status, answer = get(port, path, token)
            if status != 200 or answer.get("success") is not True:
                raise BenchError(f"{label}, {KINDS[kind]}: {status} {answer}")
            answers[label] = answer
            status, refused = get(port, path, tampered(token))
            if status != 401 or refused.get("success") is not False:
                raise BenchError(f"{label}: a tampered {KINDS[kind]} answered {status} {refused}")
        portal, base = answers["portal"], answers["baseline"]
        if portal["data"] != base["data"] or set(portal) != set(base):
            raise BenchError(
                f"{KINDS[kind]}: the baseline's answer differs from the portal's:\n"
                f"portal:   {json.dumps(portal)}\nbaseline: {json.dumps(base)}"
            )
        data = portal["data"]
        if data["user"]["name"] != "Bench A." or data["roles"] != ["user"]:
            raise BenchError(f"{KINDS[kind]}: unexpected answer {portal}")
        if data["permissions"] != ["edit-profile", "view-profile"]:
            raise BenchError(f"{KINDS[kind]}: unexpected permissions {data['permissions']}")


def write_script(path: Path, token: str) -> None:
    path.write_text(GET_SCRIPT % {"authorization": json.dumps(f"Bearer {token}")} + DONE)


# --- Main ------------------------------------------------------------------------------------


def cpu_cost(runs: list[Run]) -> float:
    return median_of(runs, "app_ms") + median_of(runs, "db_ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per endpoint and kind")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=2, help="per worker (gthread only)")
    parser.add_argument("--connections", type=int, default=6, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--only", choices=list(KINDS), action="append", help="kinds to run")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DB_NAME} afterwards")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50 or not 1 <= args.duration <= 120 or args.warmup < 1:
        parser.error("rounds in 1..50, duration in 1..120 s, warmup >= 1 s")
    if not 1 <= args.wrk_threads <= args.connections:
        parser.error("1 <= wrk-threads <= connections")
    if shutil.which("wrk") is None:
        print("bench/auth.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    kinds = [kind for kind in KINDS if not args.only or kind in args.only]

    server_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    tmp = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    proc = None
    try:
        env = environment(tmp, f"{server_url}/{DB_NAME}")
        env.update(
            {"CACHE_KEY_PREFIX": "incidencias-bench-auth", "OIDC_RSA_PRIVATE_KEY": signing_key()}
        )
        os.environ.update(env)
        recreate_database(server_url, DB_NAME)

        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        tokens = seed()
        settle(server_url)

        port = free_port()
        log_path = tmp / "gunicorn.log"
        proc = start_gunicorn(env, port, args, log_path)
        wait_ready(proc, port, log_path)
        check_answers(port, tokens)

        server = f"gunicorn {args.worker_class}, {args.workers} workers"
        if args.worker_class == "gthread":
            server += f" x {args.threads} threads"
        print(f"GET {PORTAL_PATH} vs baseline GET {BASELINE_PATH} (bench/baseline_auth.py)")
        print(
            f"{server}; wrk -t{args.wrk_threads} -c{args.connections}; {args.rounds} rounds x "
            f"{args.duration} s per kind, interleaved; same data from both for every kind, "
            f"tampered tokens refused by both; PostgreSQL {DB_NAME}; DEBUG off; "
            f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}"
        )
        urls = {
            "portal": f"http://127.0.0.1:{port}{PORTAL_PATH}",
            "baseline": f"http://127.0.0.1:{port}{BASELINE_PATH}",
        }
        results = {}
        for kind in kinds:
            print(f"\n--- {KINDS[kind]} (target >= {TARGETS[kind]:.0%}) ---")
            script = tmp / f"{kind}.lua"
            write_script(script, tokens[kind])
            runs = measure(urls, script, args, proc.pid)
            results[kind] = (runs, report_throughput(runs))

        print("\nSummary")
        for kind, (runs, ratio) in results.items():
            portal, base = runs["portal"], runs["baseline"]
            print(
                f"  {KINDS[kind]:<12} portal {median_of(portal, 'rps'):.0f} req/s, baseline "
                f"{median_of(base, 'rps'):.0f} req/s: {ratio:.1%} (target >= "
                f"{TARGETS[kind]:.0%}): {verdict(ratio >= TARGETS[kind])}; CPU per request "
                f"{cpu_cost(portal):.2f} vs {cpu_cost(base):.2f} ms, "
                f"{cpu_cost(base) / cpu_cost(portal):.1%}"
            )
    except BenchError as exc:
        print(f"\nbench/auth.py: ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_gunicorn(proc)
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            try:
                drop_database(server_url, DB_NAME)
            except psycopg.Error as exc:
                print(f"could not drop {DB_NAME}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
