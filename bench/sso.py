"""Benchmark: POST /api/SSO/access (normal mode) and GET /api/SSO/refreshUserToken.

    .venv/bin/python bench/sso.py [--rounds 5] [--duration 5] [--keep-db] [--help]

SSO/access is bounded by the password hasher (Argon2id, the production PASSWORD_HASHERS, which
bench/settings.py inherits untouched): its requests/s are set beside the hasher-bound rate, i.e.
how many bare `check_password` calls per second as many processes as gunicorn has workers
manage in the same time (a pool of N forked processes, each checking the bench user's right
password against its stored hash until the deadline). Every login succeeds, so the lockout
counters (per account, per IP, in Redis) are never written: the script checks that no
`sso:fallos` key exists afterwards. Target: access >= 70% of the hasher-bound rate.

refreshUserToken is set against `bench/baseline_sso.py`, a DRF view that runs only the SQL the
endpoint cannot avoid (SELECT the token, UPDATE it revoked, INSERT the new one, INSERT the audit
row) through a plain psycopg cursor. Target: >= 60% of the baseline.

Each refresh consumes its token, so wrk cannot replay one Bearer. The wrk Lua script keeps a
pool of live tokens per wrk thread, seeded with fresh tokens issued for each run (two per
connection): `request()` takes one out, `response()` puts back the one the answer carries. wrk
calls `response()` before it writes the connection's next request, so the pool never runs dry
and the number of tokens is unbounded by any pre-issued list; a token lost to a failed answer
shows up as a non-2xx, which stops the bench. Both endpoints answer the same JSON shape, so
the same script drives both.

Same gunicorn (3 sync workers by default, see bench/api.py for why), same database of its own
(`incidencias_bench_sso`, dropped and recreated, dropped afterwards unless --keep-db), Redis db 8
(BENCH_REDIS_URL), interleaved rounds (ABBA), medians and ratios, CPU per request from /proc,
CPU used by other processes reported. Missing a target prints FAIL; an error (non-2xx from wrk,
a wrong answer, a crash) exits 1.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import psycopg  # noqa: E402

from bench.api import (  # noqa: E402
    CLOCK_TICKS,
    WRK_SCRIPT,
    BenchError,
    Run,
    drop_database,
    environment,
    free_port,
    median_of,
    recreate_database,
    report_throughput,
    settle,
    start_gunicorn,
    stop_gunicorn,
    verdict,
    wrk,
)

ACCESS_PATH = "/api/SSO/access"
REFRESH_PATH = "/api/SSO/refreshUserToken"
BASELINE_PATH = "/bench/baseline-refresh"
DB_NAME = "incidencias_bench_sso"
CONSUMER = "bench-sso"
PRODUCT = "bench"
LOGIN = "bsso"
PASSWORD = "Bench-" + secrets.token_urlsafe(12)
TARGET_ACCESS = 0.70
TARGET_REFRESH = 0.60
ACCESS_KEYS = {"authenticated", "id", "code", "name", "email", "phone", "token"}
REFRESH_KEYS = ACCESS_KEYS - {"authenticated"}
ENVELOPE_KEYS = {"data", "status", "message", "code", "id_bitacora_log"}

DONE = WRK_SCRIPT[WRK_SCRIPT.index("done = ") :] % {}  # the same BENCH line bench/api.py parses

REFRESH_SCRIPT = """\
wrk.method = "GET"
local consumo = %(nombre)s
local secreto = %(secreto)s
local seeds = %(seeds)s
local pool = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("slot", threads)
end

function init(args)
  for _, token in ipairs(seeds[slot]) do pool[#pool + 1] = token end
end

function request()
  local token = table.remove(pool) or "0|none-left"
  return wrk.format(nil, nil, {
    ["X-User-Consumo"] = consumo,
    ["X-User-Secret"] = secreto,
    ["Authorization"] = "Bearer " .. token,
  })
end

function response(status, headers, body)
  local token = body:match('"token"%%s*:%%s*"([^"]+)"')
  if token then pool[#pool + 1] = token end
end

"""


def lua(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


# --- Setup -----------------------------------------------------------------------------------


def seed() -> tuple[int, str, int]:
    """One product, one user allowed into it (Argon2id password), one consumer with `sso`."""
    from sso.consumidores import consumidor_crear
    from sso.models import Departamento, Sistema, Usuario

    sistema = Sistema.objects.create(alias=PRODUCT, nombre="Bench", dominio="bench.example.com")
    usuario = Usuario.objects.create_user(
        username=LOGIN,
        email=f"{LOGIN}@example.com",
        password=PASSWORD,
        nombre="Bench S.",
        cedula="1-0999-0999",
        departamento=Departamento.objects.create(nombre="Soporte"),
        movil="+506.80000000",
    )
    usuario.accesos_sistemas.set([sistema])
    consumidor, secret = consumidor_crear(
        nombre=CONSUMER, permisos=["sso"], descripcion="bench/sso.py"
    )
    return usuario.pk, secret, consumidor.pk


def issue_tokens(count: int) -> list[str]:
    """Fresh user tokens for the bench user on the bench product, as SSO/access issues them."""
    from sso.models import Sistema, Usuario
    from sso.tokens import token_emitir

    usuario = Usuario.objects.get(username=LOGIN)
    sistema = Sistema.objects.get(alias=PRODUCT)
    return [token_emitir(usuario=usuario, sistema=sistema, ip="127.0.0.1")[1] for _ in range(count)]


def lockout_keys(redis_url: str) -> list[str]:
    """Every lockout counter in the bench's Redis database (any key prefix)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return sorted(key.decode() for key in client.scan_iter(match="*sso:fallos:*"))
    finally:
        client.close()


# --- HTTP ------------------------------------------------------------------------------------


def request(port: int, method: str, path: str, secreto: str, body=None, token=None):
    headers = {"X-User-Consumo": CONSUMER, "X-User-Secret": secreto}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {"raw": raw[:200].decode(errors="replace")}


def wait_ready(proc, port: int, secreto: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            status, answer = request(port, "GET", REFRESH_PATH, secreto, token="0|x")
        except OSError:
            time.sleep(0.2)
            continue
        if status == 401:  # up, and refusing a bogus token
            return
        raise BenchError(f"refreshUserToken answered {status} while starting: {answer}")
    raise BenchError("gunicorn did not answer within 30 s")


def check_shape(label: str, status: int, answer: dict, keys: set) -> dict:
    data = answer.get("data") if isinstance(answer, dict) else None
    if status != 200 or set(answer) != ENVELOPE_KEYS or not isinstance(data, dict):
        raise BenchError(f"{label}: {status} {answer}")
    if set(data) != keys or answer["status"] != "ok" or answer["code"] != 200:
        raise BenchError(f"{label}: unexpected answer {answer}")
    if not isinstance(answer["id_bitacora_log"], int):
        raise BenchError(f"{label}: id_bitacora_log {answer['id_bitacora_log']!r}")
    ident, sep, secret = str(data["token"]).partition("|")
    if not (sep and ident.isdigit() and len(secret) >= 40):
        raise BenchError(f"{label}: token {data['token']!r}")
    return data


def check_answers(port: int, secreto: str, redis_url: str) -> None:
    """Both endpoints answer 200 with the expected shapes; tokens are single-use."""
    body = {"product": PRODUCT, "user": LOGIN, "password": PASSWORD}
    status, answer = request(port, "POST", ACCESS_PATH, secreto, body=body)
    access = check_shape("SSO/access", status, answer, ACCESS_KEYS)
    if access["authenticated"] is not True:
        raise BenchError(f"SSO/access: {answer}")
    answers = {}
    for label, path in (("refreshUserToken", REFRESH_PATH), ("baseline", BASELINE_PATH)):
        token = issue_tokens(1)[0]
        status, answer = request(port, "GET", path, secreto, token=token)
        data = check_shape(label, status, answer, REFRESH_KEYS)
        status, again = request(port, "GET", path, secreto, token=token)
        if status != 401:
            raise BenchError(f"{label}: a used token answered {status}: {again}")
        status, answer = request(port, "GET", path, secreto, token=data["token"])
        answers[label] = check_shape(f"{label} (its own new token)", status, answer, REFRESH_KEYS)
    portal, base = ({k: v for k, v in d.items() if k != "token"} for d in answers.values())
    expected = {k: v for k, v in access.items() if k not in ("token", "authenticated")}
    if not portal == base == expected:
        raise BenchError(f"data differ: portal {portal}, baseline {base}, access {expected}")
    if lockout_keys(redis_url):
        raise BenchError(f"lockout counters written: {lockout_keys(redis_url)}")


# --- The hasher-bound rate -------------------------------------------------------------------


def _check_loop(encoded: str, deadline: float, queue) -> None:
    from django.contrib.auth.hashers import check_password

    count, cpu = 0, time.process_time()
    while time.monotonic() < deadline:
        if not check_password(PASSWORD, encoded):
            queue.put((-1, 0.0))
            return
        count += 1
    queue.put((count, time.process_time() - cpu))


@dataclass
class HasherRun:
    rps: float
    cpu_ms: float  # CPU per check, in the pool's processes
    other_ms: float  # CPU used by the rest of the machine, per check
    busy: float


def _cpu_totals() -> tuple[int, int]:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(x) for x in fields[:8]), int(fields[3]) + int(fields[4])


def hasher_rate(encoded: str, processes: int, seconds: float) -> HasherRun:
    """Bare check_password calls per second by `processes` forked processes."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    total0, idle0 = _cpu_totals()
    started = time.monotonic()
    deadline = started + seconds
    pool = [
        ctx.Process(target=_check_loop, args=(encoded, deadline, queue)) for _ in range(processes)
    ]
    for proc in pool:
        proc.start()
    results = [queue.get(timeout=seconds + 30) for _ in pool]
    for proc in pool:
        proc.join(timeout=10)
    elapsed = time.monotonic() - started  # includes the last check past the deadline
    total1, idle1 = _cpu_totals()
    if any(count < 0 for count, _ in results):
        raise BenchError("check_password refused the bench user's password")
    count = sum(c for c, _ in results)
    cpu = sum(s for _, s in results)
    busy = (total1 - total0) - (idle1 - idle0)
    return HasherRun(
        rps=count / elapsed,
        cpu_ms=cpu / count * 1000,
        other_ms=max(busy / CLOCK_TICKS - cpu, 0.0) / count * 1000,
        busy=busy / (total1 - total0) if total1 > total0 else 0.0,
    )


# --- wrk scripts -----------------------------------------------------------------------------


def write_access_script(path: Path, secreto: str) -> None:
    body = {"product": PRODUCT, "user": LOGIN, "password": PASSWORD, "modo": "normal"}
    path.write_text(
        WRK_SCRIPT
        % {"body": lua(json.dumps(body)), "nombre": lua(CONSUMER), "secreto": lua(secreto)}
    )


def write_refresh_script(path: Path, secreto: str, args) -> None:
    per_thread = max(2, 2 * -(-args.connections // args.wrk_threads))
    tokens = issue_tokens(per_thread * args.wrk_threads)
    seeds = [tokens[i * per_thread : (i + 1) * per_thread] for i in range(args.wrk_threads)]
    table = "{" + ", ".join("{" + ", ".join(lua(t) for t in s) + "}" for s in seeds) + "}"
    text = REFRESH_SCRIPT % {"nombre": lua(CONSUMER), "secreto": lua(secreto), "seeds": table}
    path.write_text(text + DONE)


# --- Measuring -------------------------------------------------------------------------------


def measure_access(url, script, encoded, args, server_pid) -> tuple[list[Run], list[HasherRun]]:
    wrk(url, script, args.warmup, args, server_pid)
    hasher_rate(encoded, args.workers, args.warmup)
    access: list[Run] = []
    hasher: list[HasherRun] = []
    print(f"\n{'round':>6}  {'access req/s':>12}  {'check_password/s':>16}  {'ratio':>6}")
    for index in range(args.rounds):
        order = ("access", "hasher") if index % 2 == 0 else ("hasher", "access")
        for name in order:
            if name == "access":
                access.append(wrk(url, script, args.duration, args, server_pid))
            else:
                hasher.append(hasher_rate(encoded, args.workers, args.duration))
        a, h = access[-1].rps, hasher[-1].rps
        print(f"{index + 1:>6}  {a:>12.1f}  {h:>16.1f}  {a / h:>6.1%}")
    return access, hasher


def report_access(access: list[Run], hasher: list[HasherRun]) -> float:
    a = median_of(access, "rps")
    h = statistics.median(r.rps for r in hasher)
    pairs = [x.rps / y.rps for x, y in zip(access, hasher, strict=True)]
    print(f"{'median':>6}  {a:>12.1f}  {h:>16.1f}  {a / h:>6.1%}")
    print(
        f"(per-round ratios: median {statistics.median(pairs):.1%}, "
        f"range {min(pairs):.1%} to {max(pairs):.1%})"
    )
    print(
        f"\nLatency of access (medians of rounds): p50 {median_of(access, 'p50_ms'):.1f} ms, "
        f"p99 {median_of(access, 'p99_ms'):.1f} ms"
    )
    print("\nCPU per request / per check (medians of rounds, from /proc):")
    print(f"  {'':<8}  {'gunicorn':>9}  {'PostgreSQL':>10}  {'wrk':>7}  {'other':>7}  cores busy")
    app, db, load, other, busy = (
        median_of(access, f) for f in ("app_ms", "db_ms", "wrk_ms", "other_ms", "busy")
    )
    print(
        f"  {'access':<8}  {app:6.2f} ms  {db:7.2f} ms  {load:4.2f} ms  {other:5.2f} ms  "
        f"{busy:>10.0%}"
    )
    h_cpu = statistics.median(r.cpu_ms for r in hasher)
    h_other = statistics.median(r.other_ms for r in hasher)
    h_busy = statistics.median(r.busy for r in hasher)
    print(
        f"  {'hasher':<8}  {h_cpu:6.2f} ms  {'-':>10}  {'-':>7}  {h_other:5.2f} ms  {h_busy:>10.0%}"
    )
    for name, own, rest in (("access", app + db + load, other), ("hasher", h_cpu, h_other)):
        if rest > 0.1 * (own + rest):
            print(f"  warning: other processes used {rest:.2f} ms per {name} call; noisy")
    print(
        f"  CPU-cost ratio, check_password / access (gunicorn + PostgreSQL): "
        f"{h_cpu / (app + db):.1%} (the throughput ratio if CPU-bound)"
    )
    return a / h


def measure_refresh(urls: dict, script: Path, secreto: str, args, server_pid) -> dict:
    for url in urls.values():
        write_refresh_script(script, secreto, args)
        wrk(url, script, args.warmup, args, server_pid)
    runs: dict[str, list[Run]] = {name: [] for name in urls}
    print(f"\n{'round':>6}  {'portal req/s':>12}  {'baseline req/s':>14}  {'ratio':>6}")
    for index in range(args.rounds):
        order = ("portal", "baseline") if index % 2 == 0 else ("baseline", "portal")
        for name in order:
            write_refresh_script(script, secreto, args)  # fresh tokens for every run
            runs[name].append(wrk(urls[name], script, args.duration, args, server_pid))
        p, b = runs["portal"][-1].rps, runs["baseline"][-1].rps
        print(f"{index + 1:>6}  {p:>12.0f}  {b:>14.0f}  {p / b:>6.1%}")
    return runs


# --- Main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per endpoint")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers = hasher pool")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=2, help="per worker (gthread only)")
    parser.add_argument("--connections", type=int, default=6, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--only", choices=["access", "refresh"], help="run one part only")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DB_NAME} afterwards")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50 or not 1 <= args.duration <= 120 or args.warmup < 1:
        parser.error("rounds in 1..50, duration in 1..120 s, warmup >= 1 s")
    if not 1 <= args.wrk_threads <= args.connections:
        parser.error("1 <= wrk-threads <= connections")
    if shutil.which("wrk") is None:
        print("bench/sso.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2

    server_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
    tmp = Path(tempfile.mkdtemp(prefix="bench-sso-"))
    proc = None
    try:
        env = environment(tmp, f"{server_url}/{DB_NAME}")
        env.update(
            {
                "REDIS_URL": redis_url,
                "CACHE_KEY_PREFIX": "incidencias-bench-sso",
                "CONSUMO_RATE": "",
            }
        )
        os.environ.update(env)
        recreate_database(server_url, DB_NAME)

        import django
        from django.conf import settings
        from django.contrib.auth.hashers import get_hasher, identify_hasher
        from django.core.management import call_command

        django.setup()
        if settings.PASSWORD_HASHERS[0] != "sso.hashers.Argon2idHasher":
            raise BenchError(f"not the production hashers: {settings.PASSWORD_HASHERS}")
        call_command("migrate", verbosity=0, interactive=False)
        usuario_id, secreto, consumidor_id = seed()
        env["BENCH_CONSUMIDOR_ID"] = str(consumidor_id)
        from sso.models import Usuario

        encoded = Usuario.objects.get(pk=usuario_id).password
        hasher = identify_hasher(encoded)
        if type(hasher) is not type(get_hasher("default")):
            raise BenchError(f"the user's hash is not the default hasher's: {hasher.algorithm}")
        params = hasher.decode(encoded)
        stale = lockout_keys(redis_url)
        if stale:
            raise BenchError(f"lockout counters already in {redis_url}: {stale}")
        settle(server_url)

        port = free_port()
        log_path = tmp / "gunicorn.log"
        proc = start_gunicorn(env, port, args, log_path)
        wait_ready(proc, port, secreto, log_path)
        check_answers(port, secreto, redis_url)

        server = f"gunicorn {args.worker_class}, {args.workers} workers"
        if args.worker_class == "gthread":
            server += f" x {args.threads} threads"
        print(
            f"{server}; wrk -t{args.wrk_threads} -c{args.connections}; {args.rounds} rounds x "
            f"{args.duration} s, interleaved; PostgreSQL {DB_NAME}; Redis {redis_url}; "
            f"DEBUG off; {os.cpu_count()} cores"
        )
        access_ratio = refresh_ratio = None
        if args.only in (None, "access"):
            print(
                f"\nPOST {ACCESS_PATH} (normal mode, right password) vs bare check_password in "
                f"{args.workers} processes; hasher {hasher.algorithm} "
                f"m={params['memory_cost']} KiB t={params['time_cost']} "
                f"p={params['parallelism']}"
            )
            script = tmp / "access.lua"
            write_access_script(script, secreto)
            url = f"http://127.0.0.1:{port}{ACCESS_PATH}"
            access, hasher_runs = measure_access(url, script, encoded, args, proc.pid)
            access_ratio = report_access(access, hasher_runs)
            keys = lockout_keys(redis_url)
            if keys:
                raise BenchError(f"lockout counters written during the run: {keys}")
            print("  lockout counters (sso:fallos:*) in Redis after the run: none")
        if args.only in (None, "refresh"):
            print(
                f"\nGET {REFRESH_PATH} vs baseline GET {BASELINE_PATH} (bench/baseline_sso.py); "
                "each request's Bearer is the token the previous answer returned"
            )
            urls = {
                "portal": f"http://127.0.0.1:{port}{REFRESH_PATH}",
                "baseline": f"http://127.0.0.1:{port}{BASELINE_PATH}",
            }
            runs = measure_refresh(urls, tmp / "refresh.lua", secreto, args, proc.pid)
            refresh_ratio = report_throughput(runs)

        print("\nSummary")
        if access_ratio is not None:
            print(
                f"  SSO/access {median_of(access, 'rps'):.1f} req/s, hasher-bound "
                f"{statistics.median(r.rps for r in hasher_runs):.1f} check_password/s: "
                f"{access_ratio:.1%} (target >= {TARGET_ACCESS:.0%}): "
                f"{verdict(access_ratio >= TARGET_ACCESS)}"
            )
        if refresh_ratio is not None:
            print(
                f"  refreshUserToken {median_of(runs['portal'], 'rps'):.0f} req/s, baseline "
                f"{median_of(runs['baseline'], 'rps'):.0f} req/s: {refresh_ratio:.1%} "
                f"(target >= {TARGET_REFRESH:.0%}): {verdict(refresh_ratio >= TARGET_REFRESH)}"
            )
    except BenchError as exc:
        print(f"\nbench/sso.py: ERROR: {exc}", file=sys.stderr)
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
