"""Benchmark: mail ingestion (`incidencias.ingest.ingest_flujo`) beside two baselines.

    .venv/bin/python bench/ingest.py [--mails 5000] [--seed 20250301] [--batch N] [--profile]
        [--profile-cpu] [--keep-db] [--skip-helpdesk] [--skip-ours] [--skip-memory]
        [--helpdesk-unsorted]

A seeded generator (bench/mailgen.py) writes the mails as .eml files under bench/work/ (70%
new, 30% replies, 20% with a 50 KB attachment, Spanish text, some ISO-8859-1 subjects; kept
while the count and seed stay the same). Three ways of taking in the same files, one after the
other, each timed alone, each reading every file from disk:

  (a) the standard library's parse: `email.message_from_bytes(raw, policy=default)`, then
      `get_content()` of every leaf part: the floor no pipeline on that parser beats. Policy
      `compat32` (what the pipeline parses with) is printed beside it for reference.
  (b) django-helpdesk's own import (`process_email`, what `manage.py get_email` runs) from a
      local directory mailbox, in a virtualenv of its own (bench/work/helpdesk-venv, built on
      first use with the pins below), on PostgreSQL database `bench_helpdesk` (dropped and
      recreated); see bench/helpdesk_import.py.
  ours: `ingest_flujo(batches, cuenta=...)` in this process, in batches as the IMAP poller
      fetches them (`incidencias.imap.LOTE`, 100, unless --batch): each batch's files are read
      and parsed while the one before is stored, each stored once the one before committed
      (the poller's stream), with bench/ingest_settings.py, DEBUG off, on PostgreSQL database
      `incidencias_bench_ingest` (dropped, recreated, migrated, the `demo` organisation, a
      CuentaCorreo of the Soporte department); then 100 of the mails again, which must come
      back as duplicates and store nothing (no row, file or task).
      Printed beside it: the statements it ran by kind and the time in them (of both threads),
      and the rate of the pipeline's own parse (`incidencias.mensajes.parse_raw`) without the
      database. `--profile` profiles every thread of the stream together (wall time, or CPU
      time per thread with --profile-cpu), and also the calling and the storing thread apart
      (ingest-main.prof, ingest-store.prof in the work dir).

A reply is threaded when it lands on the ticket of the mail it answers (the manifest records
which). Then, in a fresh process each, one 25 MB message is ingested and the increase of peak
RSS measured (VmHWM reset through /proc/self/clear_refs once the message is in memory), beside
the same for the standard library's parse of it.

Each rate comes with the CPU seconds of the process measured, of PostgreSQL (the server's own
processes and the connections to the database measured, not those to other databases) and of
every other process of the machine: when others were busy (another test run), the wall-clock
rates are noisy and the CPU cost per mail is the steadier comparison.

Targets (issue): ours >= 5x django-helpdesk's rate on the same files in the same run (goal
10x), 100% of replies threaded, the 25 MB message raising peak memory by < 150 MB. Missing a
target prints FAIL; only an error (a crash, a baseline that cannot run) exits non-zero.
Needs PostgreSQL (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432), PyPI on the
first run (helpdesk's virtualenv), and optionally Redis (BENCH_REDIS_URL).
"""

import argparse
import base64
import contextlib
import cProfile
import email
import gc
import importlib.util
import io
import json
import os
import pstats
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from email import policy as email_policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/ingest.py`: import the project (and the `bench` package) from the root.
sys.path[0] = str(ROOT)

import psycopg  # noqa: E402

from bench import api, mailgen  # noqa: E402
from bench.api import recreate_database, settle  # noqa: E402

DB_NAME = "incidencias_bench_ingest"
HELPDESK_DB = "bench_helpdesk"
HELPDESK_REQUIREMENTS = [
    "django-helpdesk==2.6.1",  # the newest release; supports Django 5.2 and Python 3.10+
    "Django>=5.2,<5.3",
    "psycopg[binary]>=3.2,<4",
]
CELERY_QUEUE = "incidencias-bench-ingest"
TARGET_RATIO = 5.0
GOAL_RATIO = 10.0
TARGET_MEMORY_MB = 150.0
BIG_MESSAGE_BYTES = 25_000_000  # 25 MB: under INGEST_MAX_BYTES (25 MiB), so stored whole
DUPLICATES = 100
DEFAULT_SEED = 20250301
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something went wrong that makes the figures meaningless."""


class Skipped(Exception):
    """A stage that was not asked for, or cannot run yet."""


@dataclass
class Rate:
    mails: int
    seconds: float
    cpu_s: float  # this process (or helpdesk's)
    db_cpu_s: float  # PostgreSQL's processes
    others_s: float = 0.0  # every other process of the machine: noise

    @property
    def per_s(self) -> float:
        return self.mails / self.seconds if self.seconds else 0.0

    @property
    def cost_ms(self) -> float:
        """CPU per mail, ours (or helpdesk's) and PostgreSQL's: what the rate is if CPU-bound."""
        return (self.cpu_s + self.db_cpu_s) / self.mails * 1000 if self.mails else 0.0


@dataclass
class Ours:
    rate: Rate
    created: int = 0
    replies_created: int = 0
    failed: list[str] = field(default_factory=list)
    threaded: int = 0
    replies: int = 0
    batch: int = 1
    p50_ms: float = 0.0  # of a batch
    p99_ms: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)
    tasks: int | None = None
    duplicates: dict = field(default_factory=dict)
    sql: dict[str, list] = field(default_factory=dict)  # statement kind -> [count, seconds]
    profile: str = ""


# --- Processes, CPU, memory ------------------------------------------------------------------


def postgres_ticks(database: str) -> dict[int, int]:
    """CPU ticks so far of each PostgreSQL process working for `database`: its client
    connections and the server's own processes (WAL writer, checkpointer, autovacuum), not the
    connections to other databases (someone else's tests on the same server)."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        head, _, tail = stat.rpartition(")")
        if head.partition("(")[2] != "postgres":
            continue
        if _CLIENT.search(title) and f" {database} " not in title:
            continue
        fields = tail.split()
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


def postgres_cpu_since(
    before: dict[int, int], database: str, seen: dict[int, int] | None = None
) -> float:
    """CPU seconds those processes used since `before` (per process: one that ended is left
    out rather than subtracted, unless `seen` holds its ticks from a late look)."""
    after = {**(seen or {}), **postgres_ticks(database)}
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLOCK_TICKS


# A client connection's process title: "postgres: 15/main: user database host(port) state".
_CLIENT = re.compile(r"\(\d+\) |\[local\] ")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def snapshot() -> tuple[float, float, dict[int, int], float]:
    gc.collect()
    return time.perf_counter(), own_cpu(), postgres_ticks(DB_NAME), machine_busy()


def rate_since(
    start: tuple[float, float, dict[int, int], float], mails: int, seen: dict | None = None
) -> Rate:
    """The rate since `start`; `seen`: PostgreSQL ticks read once the work was done, for the
    connections closed since (that of the thread `ingest_flujo` stores in)."""
    gc.collect()
    wall, cpu = time.perf_counter() - start[0], own_cpu() - start[1]
    db = postgres_cpu_since(start[2], DB_NAME, seen)
    busy = machine_busy() - start[3]
    return Rate(mails, wall, cpu, db, max(0.0, busy - cpu - db))


def vm(name: str) -> float:
    """VmRSS or VmHWM of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"/proc/self/status has no {name}")


def reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- Databases -------------------------------------------------------------------------------


def drop_database(server_url: str, name: str) -> None:
    """bench.api's, reporting a failure instead of raising (it runs while cleaning up)."""
    try:
        api.drop_database(server_url, name)
    except psycopg.Error as exc:
        print(f"could not drop {name}: {exc}", file=sys.stderr)


def redis_url() -> str | None:
    """BENCH_REDIS_URL when Redis answers there, else None (then no Redis at all)."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:
        return None
    return url


def environment(tmp: Path, database_url: str, redis: str | None) -> dict:
    """The deployment-like environment of this process and of the memory subprocesses."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.ingest_settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": "b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url,
            "CACHE_KEY_PREFIX": "incidencias-bench-ingest",
            "BENCH_CELERY_QUEUE": CELERY_QUEUE,
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "VAR_DIR": str(tmp),
            "STATIC_ROOT": str(tmp / "static"),
            "MEDIA_ROOT": str(tmp / "media"),
            "ATTACHMENTS_ROOT": str(tmp / "adjuntos"),
            "LOG_LEVEL": "WARNING",
            "ENV_FILE": "",
            "PYTHONPATH": str(ROOT),
        }
    )
    if redis:
        env["REDIS_URL"] = redis
    else:
        env.pop("REDIS_URL", None)
    return env


# --- (a) The standard library's parse --------------------------------------------------------


def parse_default(raw: bytes) -> int:
    msg = email.message_from_bytes(raw, policy=email_policy.default)
    leaves = 0
    for part in msg.walk():
        if not part.is_multipart():
            part.get_content()
            leaves += 1
    return leaves


def parse_compat32(raw: bytes) -> int:
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    leaves = 0
    for part in msg.walk():
        if not part.is_multipart():
            part.get_payload(decode=True)
            leaves += 1
    return leaves


def bench_stdlib(corpus: mailgen.Corpus, parse) -> tuple[Rate, dict[str, float]]:
    """Parse every file once; the rate and the mean ms for mails with and without attachment."""
    timings = []
    start = snapshot()
    for path in corpus.paths:
        t0 = time.perf_counter()
        parse(path.read_bytes())
        timings.append(time.perf_counter() - t0)
    return rate_since(start, len(timings)), _ms_by_kind(corpus, timings)


def _ms_by_kind(corpus: mailgen.Corpus, timings: list[float]) -> dict[str, float]:
    kinds = {
        "without attachment": [
            t for m, t in zip(corpus.mails, timings, strict=True) if not m.attachment
        ],
        "with 50 KB attachment": [
            t for m, t in zip(corpus.mails, timings, strict=True) if m.attachment
        ],
        "new": [t for m, t in zip(corpus.mails, timings, strict=True) if not m.parent],
        "reply": [t for m, t in zip(corpus.mails, timings, strict=True) if m.parent],
    }
    return {kind: statistics.fmean(ts) * 1000 for kind, ts in kinds.items() if ts}


# --- Ours ------------------------------------------------------------------------------------


def setup_ours(server_url: str) -> int:
    """Migrate the fresh database, load the demo organisation, make the mailbox; its id."""
    import django
    from django.core.management import call_command

    recreate_database(server_url, DB_NAME)
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    try:  # departments and agents, so new tickets are routed and assigned as in production
        call_command("demo", force=True, stdout=io.StringIO())
    except Exception as exc:
        print(f"  warning: manage.py demo failed ({exc}); no agents to assign", file=sys.stderr)

    from incidencias.models import CuentaCorreo
    from sso.models import Departamento

    cuenta = CuentaCorreo.objects.create(
        host="imap.example.com",
        user="soporte@example.com",
        mail_boxes=["INBOX"],
        departamento=Departamento.objects.filter(nombre="Soporte").first(),
    )
    return cuenta.pk


def table_counts() -> dict[str, int]:
    """Exact row count of every table of the bench database."""
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - names from the catalog
            counts[table] = cursor.fetchone()[0]
    return counts


def files_under(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder)) if folder.is_dir() else 0


def queued_tasks(url: str | None) -> int | None:
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url).llen(CELERY_QUEUE)


def drop_queue(url: str | None) -> None:
    if url:
        import redis

        client = redis.Redis.from_url(url)
        client.delete(CELERY_QUEUE, f"_kombu.binding.{CELERY_QUEUE}")


@contextlib.contextmanager
def _storing_thread_sql(sql: "SqlTimer"):
    """Time the statements of the thread `ingest_flujo` stores in, too: every new database
    connection of this process gets the wrapper."""
    from django.db.backends.signals import connection_created

    def wrap(sender, connection, **kwargs):
        if sql not in connection.execute_wrappers:
            connection.execute_wrappers.append(sql)

    connection_created.connect(wrap, weak=False)
    try:
        yield
    finally:
        connection_created.disconnect(wrap)


class SqlTimer:
    """A Django execute wrapper: statements and seconds by kind (verb and table).

    The time is the cursor's whole execute: adapting the parameters, the round trip and the
    server's work. COMMIT goes through another path and is not in it. Costs a few
    microseconds per statement.
    """

    def __init__(self):
        self.by_kind: dict[str, list] = {}

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            match = re.search(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)', sql)
            kind = sql.split(None, 1)[0].upper() + (f" {match.group(1)}" if match else "")
            entry = self.by_kind.setdefault(kind, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started


def bench_parse_only(corpus: mailgen.Corpus) -> Rate | None:
    """The pipeline's own parse and normalisation (`incidencias.mensajes.parse_raw`), no database.

    An internal function: None if it is not there (the pipeline's interface is `ingest_flujo`)."""
    try:
        from django.conf import settings

        from incidencias.ingest import dominio_propio
        from incidencias.mensajes import parse_raw
    except ImportError:
        return None
    limit, domain = settings.INGEST_MAX_BYTES, dominio_propio()
    start = snapshot()
    for path in corpus.paths:
        parse_raw(path.read_bytes(), max_bytes=limit, own_domain=domain)
    return rate_since(start, len(corpus.paths))


def bench_ours(corpus: mailgen.Corpus, cuenta_id: int, args, redis: str | None) -> Ours:
    from django.db import connection

    from incidencias.imap import LOTE
    from incidencias.ingest import Lote, ingest_flujo
    from incidencias.models import CuentaCorreo

    args.batch = args.batch or LOTE
    cuenta = CuentaCorreo.objects.get(pk=cuenta_id)
    ticket_of: dict[str, int] = {}
    batches = []
    created = replies_created = 0
    failed: list[str] = []
    pairs = list(zip(corpus.mails, corpus.paths, strict=True))
    clock = time.thread_time if args.profile_cpu else time.perf_counter
    profiler = cProfile.Profile(clock) if args.profile else None
    sql = SqlTimer()

    def read():  # the files of each batch, read as the poller fetches them: one batch ahead
        for first in range(0, len(pairs), args.batch):
            yield Lote([path.read_bytes() for _, path in pairs[first : first + args.batch]])

    threads = []  # the storing thread's profiler, when profiling
    seen = None

    def profile_thread(*_):
        threads.append(cProfile.Profile(clock))
        threads[-1].name = threading.current_thread().name
        threads[-1].enable()  # replaces this hook for the rest of the thread

    start = snapshot()
    if profiler:
        threading.setprofile(profile_thread)
        profiler.enable()
    with (
        connection.execute_wrapper(sql),
        _storing_thread_sql(sql),
        contextlib.closing(ingest_flujo(read(), cuenta=cuenta)) as stream,
    ):
        t0, first = time.perf_counter(), 0
        for _lote, resultados in stream:
            batches.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            batch, first = pairs[first : first + len(resultados)], first + len(resultados)
            if first == len(pairs):  # all committed: the storing connection is still open
                seen = postgres_ticks(DB_NAME)
            for (mail, _), resultado in zip(batch, resultados, strict=True):
                if resultado.ticket is None or resultado.duplicado:
                    failed.append(f"{mail.file}: {_why(resultado)}")
                    continue
                ticket_of[mail.message_id] = resultado.ticket.pk
                if resultado.creado:
                    created += 1
                    replies_created += bool(mail.parent)
    if profiler:
        profiler.disable()
        threading.setprofile(None)
    rate = rate_since(start, len(pairs), seen)

    replies = corpus.replies
    threaded = sum(
        1
        for m in replies
        if m.message_id in ticket_of and ticket_of[m.message_id] == ticket_of.get(m.parent)
    )
    ordered = sorted(batches)
    result = Ours(
        rate=rate,
        created=created,
        replies_created=replies_created,
        failed=failed,
        threaded=threaded,
        replies=len(replies),
        batch=args.batch,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        tables={k: v for k, v in table_counts().items() if k.startswith("incidencias_")},
        tasks=queued_tasks(redis),
        sql=dict(sql.by_kind),
    )
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, *threads, stream=out)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)
        result.profile = out.getvalue()
        stats.dump_stats(str(args.work_dir / "ingest.prof"))
        pstats.Stats(profiler).dump_stats(str(args.work_dir / "ingest-main.prof"))
        for thread in threads:
            if "lotes" in thread.name:
                pstats.Stats(thread).dump_stats(str(args.work_dir / "ingest-store.prof"))
    result.duplicates = check_duplicates(corpus, cuenta, ticket_of, redis, args.batch)
    return result


def _why(resultado) -> str:
    """Why a first ingest gave no ticket (or, wrongly, a duplicate)."""
    if resultado.duplicado:
        return "reported as a duplicate on first sight"
    fallido = getattr(resultado, "fallido", None)
    if fallido is not None:
        return f"kept as failed mail ({fallido.motivo}): {fallido.error[:300]}"
    return "no ticket"


def check_duplicates(
    corpus, cuenta, ticket_of: dict[str, int], redis: str | None, batch: int
) -> dict:
    """Ingest DUPLICATES of the mails again: each must say duplicate and store nothing."""
    from django.conf import settings

    from incidencias.ingest import ingest_lote

    step = max(1, len(corpus.mails) // DUPLICATES)
    chosen = list(zip(corpus.mails, corpus.paths, strict=True))[::step][:DUPLICATES]
    media = Path(settings.MEDIA_ROOT)
    tables, files, tasks = table_counts(), files_under(media), queued_tasks(redis)
    reported = same_ticket = 0
    started = time.perf_counter()
    for first in range(0, len(chosen), batch):
        part = chosen[first : first + batch]
        resultados = ingest_lote([path.read_bytes() for _, path in part], cuenta=cuenta)
        for (mail, _), resultado in zip(part, resultados, strict=True):
            reported += bool(resultado.duplicado)
            same_ticket += bool(
                resultado.ticket is not None
                and resultado.ticket.pk == ticket_of.get(mail.message_id)
            )
    seconds = time.perf_counter() - started
    after = table_counts()
    changed = {t: after.get(t, 0) - tables.get(t, 0) for t in after if after[t] != tables.get(t)}
    new_tasks = (queued_tasks(redis) or 0) - (tasks or 0)
    return {
        "count": len(chosen),
        "reported": reported,
        "same_ticket": same_ticket,
        "changed_tables": changed,
        "new_files": files_under(media) - files,
        "new_tasks": new_tasks,
        "per_s": len(chosen) / seconds if seconds else 0.0,
    }


# --- Memory: one 25 MB message, in a fresh process -------------------------------------------


def memory_child(mode: str, path: Path, cuenta_id: int | None, warmup: Path) -> dict:
    """Peak-RSS increase while taking in `path`, once everything else is warm."""
    if mode == "ours":
        import django

        django.setup()
        from incidencias.ingest import ingest_raw
        from incidencias.models import CuentaCorreo

        cuenta = CuentaCorreo.objects.get(pk=cuenta_id)
        small = warmup.read_bytes()
        old_id = email.message_from_bytes(small, policy=email_policy.compat32)["Message-ID"]
        ingest_raw(
            small.replace(old_id.encode(), b"<warmup.bench@mail.example.org>"), cuenta=cuenta
        )

        def take(raw):
            resultado = ingest_raw(raw, cuenta=cuenta)
            return {
                "stored": resultado.detalle is not None,
                "failed": str(getattr(resultado, "fallido", None) or ""),
                "detalle": getattr(resultado.detalle, "pk", None),
            }
    else:
        parse = parse_default if mode == "default" else parse_compat32
        parse(warmup.read_bytes())

        def take(raw):
            return {"leaves": parse(raw)}

    raw = path.read_bytes()
    gc.collect()
    exact = reset_peak()
    before = vm("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    outcome = take(raw)
    seconds = time.perf_counter() - started
    peak = vm("VmHWM")
    if outcome.get("detalle"):  # after the peak was read: what was kept of the attachment
        from incidencias.models import Adjunto

        stored = Adjunto.objects.filter(detalle_id=outcome["detalle"]).values_list("tamano")
        outcome["attachment_bytes"] = sum(size for (size,) in stored)
    return {
        "mode": mode,
        "bytes": len(raw),
        "rss_before_mb": before,
        "peak_mb": peak,
        "increase_mb": peak - before,
        "exact": exact,
        "seconds": seconds,
        **outcome,
    }


def measure_memory(mode: str, big: Path, warmup: Path, env: dict, cuenta_id: int | None) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        mode,
        "--memory-file",
        str(big),
        "--memory-warmup",
        str(warmup),
    ]
    if cuenta_id is not None:
        command += ["--memory-cuenta", str(cuenta_id)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise BenchError(f"memory subprocess ({mode}) failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


# --- (b) django-helpdesk ---------------------------------------------------------------------


def helpdesk_python(work: Path) -> Path:
    """The helpdesk virtualenv's python, (re)built when missing or its pins changed."""
    venv = work / "helpdesk-venv"
    python = venv / "bin" / "python"
    marker = venv / "bench-requirements.txt"
    wanted = "\n".join(HELPDESK_REQUIREMENTS) + "\n"
    if python.exists() and marker.is_file() and marker.read_text() == wanted:
        return python
    print(f"Building {venv} ({', '.join(HELPDESK_REQUIREMENTS)}); first run only...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *HELPDESK_REQUIREMENTS,
        ],
    ]
    for step in steps:
        out = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise BenchError(f"{' '.join(step[:4])} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    marker.write_text(wanted)
    return python


def bench_helpdesk(corpus: mailgen.Corpus, work: Path, tmp: Path, server_url: str, args) -> dict:
    python = helpdesk_python(work)
    maildir = work / "helpdesk-maildir"
    shutil.rmtree(maildir, ignore_errors=True)
    maildir.mkdir(parents=True)
    for path in corpus.paths:  # helpdesk deletes what it imported: give it links to the files
        try:
            os.link(path, maildir / path.name)
        except OSError:
            shutil.copyfile(path, maildir / path.name)
    recreate_database(server_url, HELPDESK_DB)
    settle(server_url)
    command = [
        str(python),
        str(ROOT / "bench" / "helpdesk_import.py"),
        "--database-url",
        f"{server_url}/{HELPDESK_DB}",
        "--maildir",
        str(maildir),
        "--manifest",
        str(corpus.folder / "manifest.json"),
        "--media",
        str(tmp / "helpdesk-media"),
    ]
    if args.helpdesk_unsorted:
        command.append("--unsorted")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONUTF8": "1",  # helpdesk opens the mail files in text mode
        "HOME": os.environ.get("HOME", "/root"),
    }
    log = tmp / "helpdesk.log"
    with log.open("w") as stderr:
        out = subprocess.run(
            command,
            env=env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=max(900, len(corpus.mails)),
        )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise BenchError(
            f"helpdesk import failed ({out.returncode}):\n{out.stdout[-2000:]}\n"
            f"{log.read_text()[-3000:]}"
        )
    result = json.loads(lines[-1])
    warnings = [line for line in log.read_text().splitlines() if line.strip()]
    result["log_lines"] = len(warnings)
    result["log_sample"] = warnings[:3]
    if result["imported"] != len(corpus.mails):
        print(
            f"  warning: helpdesk imported {result['imported']} of {len(corpus.mails)} mails "
            f"({result['left_in_maildir']} left in its maildir); log: {warnings[:5]}",
            file=sys.stderr,
        )
    shutil.rmtree(maildir, ignore_errors=True)
    return result


# --- Report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def describe(corpus: mailgen.Corpus) -> str:
    mails = corpus.mails
    return (
        f"{len(mails)} mails ({sum(not m.parent for m in mails)} new, {len(corpus.replies)} "
        f"replies, {sum(m.attachment for m in mails)} with a 50 KB attachment, "
        f"{sum(m.html for m in mails)} with HTML, {sum(m.iso for m in mails)} in ISO-8859-1; "
        f"{corpus.total_bytes / 1e6:.1f} MB, median "
        f"{statistics.median(m.bytes for m in mails) / 1024:.1f} KB), seed {corpus.seed}"
    )


def rate_row(label: str, rate: Rate | None, note: str = "") -> str:
    if rate is None:
        return f"  {label:<38} {'-':>8}  {note}"
    return (
        f"  {label:<38} {rate.per_s:8.1f}  {rate.seconds:7.1f}  {rate.cpu_s:6.1f} "
        f"{rate.db_cpu_s:5.1f} {rate.others_s:6.1f}  {rate.seconds / rate.mails * 1000:7.2f} "
        f"{rate.cost_ms:7.2f}  {note}"
    )


def pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.1%})" if whole else "-"


def report(corpus, stdlib, compat, parse_only, helpdesk, ours, memory, errors) -> None:
    print(
        "\nRate. Wall clock, files read from the page cache. CPU seconds from getrusage and "
        "/proc:\nthe process measured, PostgreSQL, and every other process of the machine "
        "(noise).\ncost = CPU ms per mail of the process and PostgreSQL."
    )
    print(
        f"  {'':<38} {'mails/s':>8}  {'wall s':>7}  {'CPU s':>6} {'PG s':>5} {'others':>6}  "
        f"{'ms/mail':>7} {'cost':>7}"
    )
    print(rate_row("stdlib parse, policy default (floor)", stdlib[0] if stdlib else None))
    print(rate_row("stdlib parse, policy compat32", compat[0] if compat else None, "reference"))
    hd_rate = None
    if helpdesk:
        hd_rate = Rate(
            helpdesk["imported"],
            helpdesk["seconds"],
            helpdesk["cpu_s"],
            helpdesk["postgres_cpu_s"],
            helpdesk.get("others_cpu_s", 0.0),
        )
        print(rate_row(f"django-helpdesk {helpdesk['version']} get_email", hd_rate))
    else:
        print(rate_row("django-helpdesk get_email", None, "not measured"))
    label = "ours: ingest_flujo" + (" (under cProfile)" if ours and ours.profile else "")
    print(rate_row(label, ours.rate if ours else None, "" if ours else "not measured"))
    if parse_only:
        print(rate_row("ours: parse_raw alone, no database", parse_only, "reference"))
    noisy = [
        name
        for name, rate in (
            ("stdlib", stdlib[0] if stdlib else None),
            ("helpdesk", hd_rate),
            ("ours", ours.rate if ours else None),
        )
        if rate and rate.others_s > 0.1 * rate.seconds
    ]
    if noisy:
        print(
            f"  warning: other processes used more than 10% of a core during: {', '.join(noisy)};"
            " the rates are noisy (compare the cost column)"
        )

    if stdlib:
        print("\nStandard-library parse, mean ms per mail:")
        for name, (_, kinds) in (("default", stdlib), ("compat32", compat)):
            if kinds:
                shown = ", ".join(f"{k} {v:.2f}" for k, v in kinds.items())
                print(f"  {name:<9} {shown}")

    if helpdesk:
        print(
            f"\ndjango-helpdesk: {helpdesk['imported']} of {helpdesk['files']} files imported "
            f"({helpdesk['order']} listing), {helpdesk['tickets']} tickets, "
            f"{helpdesk['followups']} follow-ups, {helpdesk['attachments']} attachment files "
            f"(HTML bodies included), {helpdesk['mails_sent']} acknowledgements rendered; "
            f"replies threaded {pct(helpdesk['threaded'], helpdesk['replies'])}"
        )
        if helpdesk["log_lines"]:
            print(f"  its log: {helpdesk['log_lines']} lines, e.g. {helpdesk['log_sample'][:2]}")

    if ours:
        new = len(corpus.mails) - len(corpus.replies)
        opened = pct(ours.created - ours.replies_created, new)
        print(
            f"\nOurs: {ours.rate.mails - len(ours.failed)} of {ours.rate.mails} mails on a "
            f"ticket; new mails that opened a ticket {opened}"
            f", replies that opened one {ours.replies_created}; "
            f"replies threaded {pct(ours.threaded, ours.replies)}"
        )
        print(
            f"  a batch of {ours.batch} mails, from one commit to the next: "
            f"p50 {ours.p50_ms:.1f} ms, p99 {ours.p99_ms:.1f} ms"
        )
        print("  rows: " + ", ".join(f"{k} {v}" for k, v in ours.tables.items() if v))
        if ours.sql:
            count = sum(n for n, _ in ours.sql.values())
            seconds = sum(t for _, t in ours.sql.values())
            mails = ours.rate.mails
            print(
                f"  SQL: {count / mails:.1f} statements per mail, {seconds / mails * 1000:.2f} ms "
                f"per mail in execute (parameters, round trip, server; COMMIT not included):"
            )
            top = sorted(ours.sql.items(), key=lambda item: -item[1][1])[:8]
            for kind, (n, t) in top:
                print(f"    {t / mails * 1000:6.2f} ms/mail  {n / mails:5.2f}/mail  {kind}")
        if ours.tasks is not None:
            print(f"  Celery tasks enqueued: {ours.tasks}")
        for line in ours.failed[:5]:
            print(f"  not ingested: {line}")
        dup = ours.duplicates
        print(
            f"  duplicates: {dup['reported']}/{dup['count']} reported as such, "
            f"{dup['same_ticket']} with the first ticket, at {dup['per_s']:.0f}/s; stored: "
            f"rows {dup['changed_tables'] or 'none'}, files {dup['new_files']}, "
            f"tasks {dup['new_tasks']}"
        )
        if ours.profile:
            print("\ncProfile of the timed loop (also in the work dir as ingest.prof):")
            print(ours.profile)

    if memory:
        print("\nOne 25 MB message, peak RSS increase in a fresh process (input already read):")
        for item in memory.values():
            extra = ""
            if item["mode"] == "ours":
                extra = (
                    f"; stored: {item['stored']}, attachment "
                    f"{item.get('attachment_bytes', 0) / 1e6:.1f} MB"
                    f"{', failed: ' + item['failed'] if item['failed'] else ''}"
                )
            exact = "" if item["exact"] else " (approximate: VmHWM could not be reset)"
            print(
                f"  {item['mode']:<9} +{item['increase_mb']:6.1f} MB (from "
                f"{item['rss_before_mb']:.0f} to {item['peak_mb']:.0f} MB) in "
                f"{item['seconds']:.2f} s{exact}{extra}"
            )

    print("\nSummary")
    if ours and hd_rate:
        ratio = ours.rate.per_s / hd_rate.per_s
        print(
            f"  ours {ours.rate.per_s:.0f} mails/s = {ratio:.1f}x django-helpdesk's "
            f"{hd_rate.per_s:.1f} (target >= {TARGET_RATIO:g}x): {verdict(ratio >= TARGET_RATIO)}; "
            f"goal {GOAL_RATIO:g}x: {'met' if ratio >= GOAL_RATIO else 'not met'}"
        )
        print(
            f"  (by CPU cost per mail, process + PostgreSQL: helpdesk {hd_rate.cost_ms:.1f} ms, "
            f"ours {ours.rate.cost_ms:.1f} ms = {hd_rate.cost_ms / ours.rate.cost_ms:.1f}x)"
        )
    else:
        print("  ours vs django-helpdesk: NOT MEASURED")
    if ours and stdlib:
        floor = stdlib[0].per_s
        print(
            f"  ours = {ours.rate.per_s / floor:.2f}x the stdlib parse with policy default "
            f"({floor:.0f} mails/s, the floor for a pipeline on that parser)"
        )
    if ours:
        hd = pct(helpdesk["threaded"], helpdesk["replies"]) if helpdesk else "not measured"
        print(
            f"  replies threaded: ours {pct(ours.threaded, ours.replies)} (target 100%): "
            f"{verdict(ours.threaded == ours.replies)}; django-helpdesk {hd}"
        )
        print(
            f"  all {ours.rate.mails} mails on a ticket: {verdict(not ours.failed)}"
            + (f" ({len(ours.failed)} not)" if ours.failed else "")
        )
        dup = ours.duplicates
        ok = (
            dup["reported"] == dup["count"]
            and not dup["changed_tables"]
            and dup["new_files"] == 0
            and dup["new_tasks"] <= 0
        )
        print(f"  {dup['count']} duplicates reported as duplicates, nothing stored: {verdict(ok)}")
    else:
        print("  threading, duplicates: NOT MEASURED")
    if memory and "ours" in memory:
        inc = memory["ours"]["increase_mb"]
        ok = inc < TARGET_MEMORY_MB and memory["ours"]["stored"]
        stdlib_inc = memory.get("default", {}).get("increase_mb")
        also = f"; stdlib parse (default) alone +{stdlib_inc:.0f} MB" if stdlib_inc else ""
        print(
            f"  25 MB message: peak RSS +{inc:.0f} MB (target < {TARGET_MEMORY_MB:g} MB): "
            f"{verdict(ok)}{also}"
        )
    else:
        print("  25 MB message: NOT MEASURED")
    for stage, message in errors:
        print(f"  ERROR in {stage}: {message.splitlines()[0] if message else ''}")


# --- Main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=5000, help="how many mails (default 5000)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "work")
    parser.add_argument("--skip-helpdesk", action="store_true", help="no baseline (b)")
    parser.add_argument("--skip-ours", action="store_true", help="baselines only")
    parser.add_argument("--skip-memory", action="store_true", help="no 25 MB message")
    parser.add_argument(
        "--helpdesk-unsorted", action="store_true", help="helpdesk in its own listdir order"
    )
    parser.add_argument(
        "--batch", type=int, help="mails per batch of the stream (default: the IMAP poller's)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile our timed loop (slows it)")
    parser.add_argument(
        "--profile-cpu",
        action="store_true",
        help="with --profile: CPU time per thread rather than wall time (slows it more)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep both databases")
    parser.add_argument(
        "--memory-child", choices=["ours", "default", "compat32"], help=argparse.SUPPRESS
    )
    parser.add_argument("--memory-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory-warmup", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory-cuenta", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        result = memory_child(
            args.memory_child, args.memory_file, args.memory_cuenta, args.memory_warmup
        )
        print(json.dumps(result))
        return 0
    if not 10 <= args.mails <= 100_000:
        parser.error("--mails in 10..100,000")

    server_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    args.work_dir = args.work_dir.resolve()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    errors: list[tuple[str, str]] = []
    stdlib = compat = parse_only = helpdesk = ours = None
    memory: dict = {}
    redis = redis_url()
    try:
        started = time.perf_counter()
        corpus = mailgen.generate(
            args.work_dir / f"mails-{args.mails}-{args.seed}", args.mails, args.seed
        )
        for old in args.work_dir.glob("mails-*"):  # keep one corpus (5,000 mails: 170 MB)
            if old.is_dir() and old != corpus.folder:
                shutil.rmtree(old, ignore_errors=True)
        print(f"Mail ingestion: {describe(corpus)}")
        print(
            f"in {corpus.folder} ({time.perf_counter() - started:.1f} s); PostgreSQL "
            f"{server_url.rpartition('@')[2]}; Redis {'yes' if redis else 'no'}; "
            f"{os.cpu_count()} cores; Python {sys.version.split()[0]}",
            flush=True,
        )

        print("\n(a) standard-library parse...", flush=True)
        stdlib = bench_stdlib(corpus, parse_default)
        compat = bench_stdlib(corpus, parse_compat32)
        print(f"  {stdlib[0].per_s:.0f} mails/s (compat32 {compat[0].per_s:.0f})", flush=True)

        env = environment(tmp, f"{server_url}/{DB_NAME}", redis)
        os.environ.update(env)
        if redis is None:
            os.environ.pop("REDIS_URL", None)
        cuenta_id = None
        print("ours: ingest_flujo...", flush=True)
        if importlib.util.find_spec("incidencias.ingest") is None:
            print("  incidencias/ingest.py is not there yet: ours is not measured", flush=True)
            args.skip_ours = True
        try:
            if args.skip_ours:
                raise Skipped
            drop_queue(redis)
            cuenta_id = setup_ours(server_url)
            settle(server_url)
            ours = bench_ours(corpus, cuenta_id, args, redis)
            parse_only = bench_parse_only(corpus)
            print(f"  {ours.rate.per_s:.0f} mails/s", flush=True)
        except Skipped:
            pass
        except Exception as exc:
            errors.append(("ours", "".join(traceback.format_exception(exc))))
        finally:
            drop_queue(redis)

        if not args.skip_memory:
            print("25 MB message...", flush=True)
            big = tmp / "grande.eml"
            mailgen.big_message(big, BIG_MESSAGE_BYTES, args.seed)
            warmup = corpus.paths[0]
            try:
                for mode in ("default", "compat32"):
                    memory[mode] = measure_memory(mode, big, warmup, env, None)
                if ours is not None:
                    memory["ours"] = measure_memory("ours", big, warmup, env, cuenta_id)
            except Exception as exc:
                errors.append(("memory", "".join(traceback.format_exception(exc))))
            finally:
                drop_queue(redis)

        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()

        if not args.skip_helpdesk:
            print("(b) django-helpdesk import (about 2 minutes for 5,000 mails)...", flush=True)
            try:
                helpdesk = bench_helpdesk(corpus, args.work_dir, tmp, server_url, args)
                print(f"  {helpdesk['imported'] / helpdesk['seconds']:.0f} mails/s", flush=True)
            except Exception as exc:
                errors.append(("helpdesk", "".join(traceback.format_exception(exc))))

        report(corpus, stdlib, compat, parse_only, helpdesk, ours, memory, errors)
    except BenchError as exc:
        errors.append(("bench", str(exc)))
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            drop_database(server_url, DB_NAME)
            drop_database(server_url, HELPDESK_DB)
        shutil.rmtree(tmp, ignore_errors=True)
    for stage, message in errors:
        print(f"\nbench/ingest.py: ERROR in {stage}:\n{message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
