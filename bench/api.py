"""Benchmark: POST /api/UsuarioInterno/get against a baseline that runs only its SQL.

    .venv/bin/python bench/api.py [--rounds 5] [--duration 5] [--keep-db] [--help]

The portal endpoint (consumer check + user query + audit row) and the baseline view of
`bench/baseline.py` (the same SELECT and INSERT through a plain psycopg cursor, same JSON) are
served by one gunicorn from the project's settings with DEBUG off, on PostgreSQL, in a database
of their own (`incidencias_bench`, dropped and recreated). `wrk` loads them from a second
process over loopback, alternately, for several rounds; the medians and their ratio are printed
against the target (portal >= 60% of the baseline), with CPU per request from /proc.

Gunicorn runs 3 sync workers by default, for both: a sync worker takes each request from the
shared socket only when idle, so the load is split evenly, and a third worker keeps both cores
busy while the others wait for PostgreSQL (with 2, the baseline leaves a third of the machine
idle). With gthread, wrk's few keep-alive connections can all land on one worker and halve the
throughput of a round at random (`--worker-class gthread --workers 2` to see it).

In-process, the consumer check is timed against its target (< 20 us, no query for a known
consumer), and a rotated, then revoked, secret must be refused by every worker within
CONSUMIDOR_CACHE_SECONDS.

Missing a target prints FAIL; only an error (a non-2xx answer, a crash, a missing tool) exits
non-zero. Needs `wrk` (apt-get install wrk), PostgreSQL (BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432) and optionally Redis (BENCH_REDIS_URL).
"""

import argparse
import base64
import http.client
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/api.py`: import the project (and the `bench` package) from the root.
sys.path[0] = str(ROOT)

import psycopg  # noqa: E402

PORTAL_PATH = "/api/UsuarioInterno/get"
BASELINE_PATH = "/bench/baseline"
DB_NAME = "incidencias_bench"
CONSUMER = "bench-lector"
TARGET_RATIO = 0.60
TARGET_CHECK_US = 20.0

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-User-Consumo"] = %(nombre)s
wrk.headers["X-User-Secret"] = %(secreto)s

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%%d duration_us=%%d connect=%%d read=%%d write=%%d status=%%d timeout=%%d "
    .. "p50_us=%%d p99_us=%%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class BenchError(Exception):
    """Something went wrong that makes the figures meaningless."""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    app_ms: float  # CPU ms per request: gunicorn, PostgreSQL, wrk, the rest of the machine
    db_ms: float
    wrk_ms: float
    other_ms: float
    busy: float  # share of all cores in use during the run


# --- Setup -----------------------------------------------------------------------------------


def environment(tmp: Path, database_url: str) -> dict:
    """The deployment-like environment shared by this process and gunicorn."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": "b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url,
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "CACHE_KEY_PREFIX": "incidencias-bench",
            "VAR_DIR": str(tmp),
            "STATIC_ROOT": str(tmp / "static"),
            "MEDIA_ROOT": str(tmp / "media"),
            "ATTACHMENTS_ROOT": str(tmp / "adjuntos"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    (tmp / "static").mkdir()
    return env


def recreate_database(server_url: str, name: str = DB_NAME) -> None:
    """A bench's database, empty (every bench has its own, named by it)."""
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def settle(server_url: str) -> None:
    """Flush what setup wrote (database files, WAL), so writeback does not slow the first rounds."""
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def drop_database(server_url: str, name: str = DB_NAME) -> None:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed() -> tuple[int, int, str, int]:
    """Departments, users with systems, one consumer: (department id, its users, secret, id)."""
    from datetime import timedelta

    from django.utils import timezone

    from sso.consumidores import consumidor_crear
    from sso.models import Departamento, Rol, Sistema, Usuario

    soporte = Departamento.objects.create(nombre="Soporte", correo="soporte@example.com")
    redes = Departamento.objects.create(nombre="Redes")
    desarrollo = Rol.objects.create(nombre="desarrollo")
    agente = Rol.objects.create(nombre="agente")
    sistemas = [
        Sistema.objects.create(alias=alias, nombre=alias.upper(), dominio=f"{alias}.example.com")
        for alias in ("sms", "factura", "correo")
    ]
    now = timezone.now()
    names = ["amora", "bsolis", "crojas", "dvega", "earias", "fmena", "gcruz"]
    for index, login in enumerate(names):
        user = Usuario.objects.create_user(
            username=login,
            email=f"{login}@example.com",
            password=None,
            nombre=f"{login[1:].capitalize()} {login[0].upper()}.",
            cedula=f"1-{1000 + index:04d}-{2000 + index:04d}",
            departamento=soporte if index < 5 else redes,
            rol=desarrollo if index % 2 else agente,
            ext=str(100 + index),
            movil=f"+506.8{index:07d}",
            acceso_ticket=index % 2 == 0,
            jefe=index == 0,
            id_synology=100 + index if index % 3 else None,
            last_login=now - timedelta(hours=index) if index % 2 else None,
            ultima_ip=f"10.0.0.{index + 1}" if index % 2 else None,
        )
        user.accesos_sistemas.set(sistemas[: index % 4])
    consumidor, secret = consumidor_crear(
        nombre=CONSUMER, permisos=["usuarios"], descripcion="bench/api.py"
    )
    return soporte.pk, 5, secret, consumidor.pk


# --- The consumer check, in-process ----------------------------------------------------------


def bench_consumer_check(secret: str, calls: int) -> dict:
    """µs per consumidor_autenticar call and the queries it made, known consumer first."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sso import consumidores

    ttl = settings.CONSUMIDOR_CACHE_SECONDS
    cases = {
        "known consumer, right secret": (CONSUMER, secret, True),
        "known consumer, wrong secret": (CONSUMER, secret[:-2] + "xx", False),
        "unknown consumer": ("nobody", secret, False),
    }
    results = {}
    for label, (nombre, secreto, accepted) in cases.items():
        consumidores.forget_all()
        with CaptureQueriesContext(connection) as first:
            result = consumidores.consumidor_autenticar(nombre=nombre, secreto=secreto)
        if (result is not None) != accepted:
            raise BenchError(f"consumidor_autenticar: {label} gave {result!r}")
        check = consumidores.consumidor_autenticar
        timings = []
        with CaptureQueriesContext(connection) as later:
            started = time.perf_counter()
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(calls // 5):
                    check(nombre=nombre, secreto=secreto)
                timings.append((time.perf_counter() - t0) / (calls // 5) * 1e6)
            elapsed = time.perf_counter() - started
        if (check(nombre=nombre, secreto=secreto) is not None) != accepted:
            raise BenchError(f"consumidor_autenticar: {label} changed its answer")
        # One reload per cache lifetime is the design; anything more is a query per call.
        allowed = int(elapsed // ttl)
        results[label] = {
            "us": statistics.median(timings),
            "first_queries": len(first.captured_queries),
            "queries": len(later.captured_queries),
            "allowed": allowed,
            "calls": (calls // 5) * 5,
        }
    return results


# --- HTTP ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(port: int, path: str, body: dict, nombre: str, secreto: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "X-User-Consumo": nombre,
                "X-User-Secret": secreto,
            },
        )
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {"raw": raw[:200].decode(errors="replace")}


def start_gunicorn(env: dict, port: int, args, log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "incidencias.wsgi:application",
        "--chdir",
        str(ROOT),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--log-level",
        "warning",
        "--graceful-timeout",
        "5",
    ]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_gunicorn(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the group of the gunicorn this script started
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_ready(proc, port: int, body: dict, secreto: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            status, _ = post(port, PORTAL_PATH, body, CONSUMER, secreto)
        except OSError:
            time.sleep(0.2)
            continue
        if status == 200:
            return
        raise BenchError(f"portal answered {status} while starting:\n{log_path.read_text()}")
    raise BenchError("gunicorn did not answer within 30 s")


def check_same_answer(port: int, body: dict, secreto: str, expected: int) -> int:
    portal_status, portal = post(port, PORTAL_PATH, body, CONSUMER, secreto)
    base_status, base = post(port, BASELINE_PATH, body, CONSUMER, secreto)
    if portal_status != 200 or base_status != 200:
        raise BenchError(f"status portal {portal_status}, baseline {base_status}: {portal} {base}")
    if portal.get("data") != base.get("data"):
        raise BenchError(
            "the baseline's data differ from the portal's:\n"
            f"portal:   {json.dumps(portal.get('data'))}\nbaseline: {json.dumps(base.get('data'))}"
        )
    if set(portal) != set(base) or portal["message"] != base["message"]:
        raise BenchError(f"envelopes differ: {sorted(portal)} {sorted(base)}")
    if len(portal["data"]) != expected or not isinstance(portal.get("id_bitacora_log"), int):
        raise BenchError(f"unexpected portal answer: {portal}")
    return len(portal["data"])


# --- wrk and CPU accounting ------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, int, str, int]]:
    """(pid, parent pid, command, CPU ticks) of every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        head, _, tail = stat.rpartition(")")
        fields = tail.split()
        comm = head.partition("(")[2]
        found.append((int(entry.name), int(fields[1]), comm, int(fields[11]) + int(fields[12])))
    return found


def cpu_snapshot(server_pid: int) -> dict:
    """CPU seconds used so far by gunicorn (master + workers) and by PostgreSQL; machine idle."""
    app = db = 0
    for pid, ppid, comm, ticks in _processes():
        if server_pid in (pid, ppid):
            app += ticks
        elif comm == "postgres":
            db += ticks
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    total = sum(int(x) for x in fields[:8])
    idle = int(fields[3]) + int(fields[4])
    return {"app": app / CLOCK_TICKS, "db": db / CLOCK_TICKS, "total": total, "idle": idle}


def wrk(url: str, script: Path, seconds: int, args, server_pid: int) -> Run:
    command = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    before, children = cpu_snapshot(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    after, wrk_usage = cpu_snapshot(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    fields = dict(item.split("=") for item in line.split()[1:])
    figures = {key: int(value) for key, value in fields.items()}
    errors = {
        key: figures[key]
        for key in ("connect", "read", "write", "status", "timeout")
        if figures[key]
    }
    if errors or figures["requests"] == 0:
        raise BenchError(f"{url}: errors during the run {errors} (status = non-2xx answers)")
    count = figures["requests"]
    app = after["app"] - before["app"]
    db = after["db"] - before["db"]
    load = (wrk_usage.ru_utime + wrk_usage.ru_stime) - (children.ru_utime + children.ru_stime)
    ticks = after["total"] - before["total"]
    busy_ticks = ticks - (after["idle"] - before["idle"])
    return Run(
        rps=count / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        app_ms=app / count * 1000,
        db_ms=db / count * 1000,
        wrk_ms=load / count * 1000,
        other_ms=max(busy_ticks / CLOCK_TICKS - app - db - load, 0.0) / count * 1000,
        busy=busy_ticks / ticks if ticks else 0.0,
    )


def write_wrk_script(path: Path, body: dict, secreto: str) -> None:
    def lua(value: str) -> str:
        return json.dumps(value)  # a JSON string literal is a valid Lua string literal here

    path.write_text(
        WRK_SCRIPT
        % {"body": lua(json.dumps(body)), "nombre": lua(CONSUMER), "secreto": lua(secreto)}
    )


# --- Revocation ------------------------------------------------------------------------------


def last_accepted(port: int, body: dict, secreto: str, window: float) -> float | None:
    """When `secreto` was last accepted, in seconds from now, polling for `window` seconds.

    A batch that got a 200 counts from the moment it was sent, so the figure may be early by
    one request's latency, never late.
    """
    started = time.monotonic()
    last = None
    with ThreadPoolExecutor(max_workers=4) as pool:
        while time.monotonic() - started < window:
            sent = time.monotonic() - started
            statuses = list(
                pool.map(lambda _: post(port, PORTAL_PATH, body, CONSUMER, secreto)[0], range(4))
            )
            unexpected = set(statuses) - {200, 401}
            if unexpected:
                raise BenchError(f"unexpected status while polling: {unexpected}")
            if 200 in statuses:
                last = sent
            time.sleep(0.05)
    return last


def check_revocation(port: int, body: dict, secreto: str, ttl: float) -> dict:
    """A rotated, then a revoked secret must be refused by every worker within `ttl`."""
    from sso.consumidores import consumidor_revocar, consumidor_rotar
    from sso.models import ConsumidorAPI

    for _ in range(16):  # every worker has the consumer cached
        post(port, PORTAL_PATH, body, CONSUMER, secreto)
    consumidor = ConsumidorAPI.objects.get(nombre=CONSUMER)
    # No overlap: this measures how fast a change reaches every worker.
    nuevo = consumidor_rotar(consumidor=consumidor, solapamiento=timedelta(0))
    rotated = last_accepted(port, body, secreto, ttl + 1.5)
    status, _ = post(port, PORTAL_PATH, body, CONSUMER, nuevo)
    if status != 200:
        raise BenchError(f"the rotated secret is refused ({status})")
    for _ in range(16):
        post(port, PORTAL_PATH, body, CONSUMER, nuevo)
    consumidor_revocar(consumidor=ConsumidorAPI.objects.get(nombre=CONSUMER))
    revoked = last_accepted(port, body, nuevo, ttl + 1.5)
    return {"rotated": rotated, "revoked": revoked}


# --- Main ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def median_of(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def measure(urls: dict, script: Path, args, server_pid: int) -> dict[str, list[Run]]:
    """Warm up, then the two endpoints alternately (ABBA order), printing each round."""
    for name in urls:  # connections, caches, shared buffers
        wrk(urls[name], script, args.warmup, args, server_pid)
    runs: dict[str, list[Run]] = {name: [] for name in urls}
    print(f"\n{'round':>6}  {'portal req/s':>12}  {'baseline req/s':>14}  {'ratio':>6}")
    for index in range(args.rounds):
        order = ("portal", "baseline") if index % 2 == 0 else ("baseline", "portal")
        for name in order:
            runs[name].append(wrk(urls[name], script, args.duration, args, server_pid))
        portal, base = runs["portal"][-1], runs["baseline"][-1]
        print(
            f"{index + 1:>6}  {portal.rps:>12.0f}  {base.rps:>14.0f}  {portal.rps / base.rps:>6.1%}"
        )
    return runs


def report_throughput(runs: dict[str, list[Run]]) -> float:
    portal_rps, base_rps = median_of(runs["portal"], "rps"), median_of(runs["baseline"], "rps")
    ratio = portal_rps / base_rps
    pairs = [p.rps / b.rps for p, b in zip(runs["portal"], runs["baseline"], strict=True)]
    print(f"{'median':>6}  {portal_rps:>12.0f}  {base_rps:>14.0f}  {ratio:>6.1%}")
    print(
        f"(per-round ratios: median {statistics.median(pairs):.1%}, "
        f"range {min(pairs):.1%} to {max(pairs):.1%})"
    )
    print("\nLatency (medians of rounds):")
    for name, name_runs in runs.items():
        print(
            f"  {name:<8}  p50 {median_of(name_runs, 'p50_ms'):6.2f} ms  "
            f"p99 {median_of(name_runs, 'p99_ms'):6.2f} ms"
        )
    print("\nCPU per request (medians of rounds, from /proc):")
    print(f"  {'':<8}  {'gunicorn':>9}  {'PostgreSQL':>10}  {'wrk':>7}  {'other':>7}  cores busy")
    cost = {}
    for name, name_runs in runs.items():
        app, db, load, other, busy = (
            median_of(name_runs, field)
            for field in ("app_ms", "db_ms", "wrk_ms", "other_ms", "busy")
        )
        cost[name] = app + db
        print(
            f"  {name:<8}  {app:6.2f} ms  {db:7.2f} ms  {load:4.2f} ms  {other:4.2f} ms  "
            f"{busy:>10.0%}"
        )
        if other > 0.1 * (app + db + load + other):
            print(f"  warning: other processes used {other:.2f} ms per {name} request; noisy")
    print(
        f"  CPU-cost ratio, baseline / portal (gunicorn + PostgreSQL): "
        f"{cost['baseline'] / cost['portal']:.1%} (the throughput ratio if CPU-bound)"
    )
    return ratio


def report_check(check: dict) -> bool:
    print("\nConsumer check (sso.consumidores.consumidor_autenticar), in-process:")
    for label, result in check.items():
        print(
            f"  {label:<30} {result['us']:6.2f} us/call; queries: first call "
            f"{result['first_queries']}, next {result['calls']} calls {result['queries']}"
        )
    known = check["known consumer, right secret"]
    return known["us"] < TARGET_CHECK_US and all(
        r["queries"] <= r["allowed"] for r in check.values()
    )


def report_revocation(window: dict, ttl: float) -> bool:
    print(f"\nSecret change seen by every worker (limit {ttl:g} s, polled {ttl + 1.5:g} s):")
    ok = True
    for label, last in window.items():
        shown = "never after the change" if last is None else f"{last:.2f} s after the change"
        ok = ok and (last is None or last <= ttl)
        print(f"  {label:<8} old secret last accepted {shown}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per endpoint")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=2, help="per worker (gthread only)")
    parser.add_argument("--connections", type=int, default=6, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--check-calls", type=int, default=100_000)
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DB_NAME} afterwards")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50 or not 1 <= args.duration <= 120 or args.warmup < 1:
        parser.error("rounds in 1..50, duration in 1..120 s, warmup >= 1 s")
    if not 5 <= args.check_calls <= 10_000_000:
        parser.error("check-calls in 5..10,000,000")
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2

    server_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    proc = None
    try:
        env = environment(tmp, f"{server_url}/{DB_NAME}")
        os.environ.update(env)
        recreate_database(server_url)

        import django
        from django.conf import settings
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        departamento, expected, secreto, consumidor_id = seed()
        env["BENCH_CONSUMIDOR_ID"] = str(consumidor_id)
        body = {"departamento": departamento}

        check = bench_consumer_check(secreto, args.check_calls)
        settle(server_url)

        port = free_port()
        log_path = tmp / "gunicorn.log"
        proc = start_gunicorn(env, port, args, log_path)
        wait_ready(proc, port, body, secreto, log_path)
        rows = check_same_answer(port, body, secreto, expected)
        script = tmp / "post.lua"
        write_wrk_script(script, body, secreto)

        server = f"gunicorn {args.worker_class}, {args.workers} workers"
        if args.worker_class == "gthread":
            server += f" x {args.threads} threads"
        print(f"POST {PORTAL_PATH} vs baseline POST {BASELINE_PATH} (bench/baseline.py)")
        print(
            f"{server}; wrk -t{args.wrk_threads} -c{args.connections}; {args.rounds} rounds x "
            f"{args.duration} s, interleaved; body {json.dumps(body)} -> {rows} users, same data "
            f"from both; PostgreSQL {DB_NAME}; DEBUG off; {os.cpu_count()} cores"
        )
        urls = {
            "portal": f"http://127.0.0.1:{port}{PORTAL_PATH}",
            "baseline": f"http://127.0.0.1:{port}{BASELINE_PATH}",
        }
        runs = measure(urls, script, args, proc.pid)
        ratio = report_throughput(runs)
        check_ok = report_check(check)
        ttl = settings.CONSUMIDOR_CACHE_SECONDS
        revocation_ok = report_revocation(check_revocation(port, body, secreto, ttl), ttl)

        known = check["known consumer, right secret"]
        print("\nSummary")
        print(
            f"  portal {median_of(runs['portal'], 'rps'):.0f} req/s, baseline "
            f"{median_of(runs['baseline'], 'rps'):.0f} req/s: {ratio:.1%} of the baseline "
            f"(target >= {TARGET_RATIO:.0%}): {verdict(ratio >= TARGET_RATIO)}"
        )
        print(
            f"  consumer check {known['us']:.2f} us/call, {known['queries']} queries in "
            f"{known['calls']} calls (target < {TARGET_CHECK_US:g} us, no query): "
            f"{verdict(check_ok)}"
        )
        print(
            f"  rotated/revoked secret refused everywhere within {ttl:g} s: "
            f"{verdict(revocation_ok)}"
        )
    except BenchError as exc:
        print(f"\nbench/api.py: ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_gunicorn(proc)
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            try:
                drop_database(server_url)
            except psycopg.Error as exc:
                print(f"could not drop {DB_NAME}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
