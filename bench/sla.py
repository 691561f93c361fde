"""Benchmark: the SLA sweep (`incidencias.sla.sla_barrer`) beside one indexed SELECT.

    .venv/bin/python bench/sla.py [--tickets 100000] [--due 0.01] [--rounds 7] [--keep-db]

On PostgreSQL, in a database of its own (`incidencias_bench_sla`, dropped, recreated and
migrated), 100,000 open tickets of one department are written with COPY: assigned to 20
agents, two department heads, every clock running and its next moment (`sla_proximo`) hours or
days ahead. Each round makes a fresh 1% of them due (outside the timing): 80% past their
warning, 20% past their due date. Then, timed one after the other:

  baseline: the sweep's own SELECT of the due tickets (indexed range on `sla_proximo`, with the
            department and assignee joined), read into model objects, without locking;
  ours:     `sla_barrer()`: the same SELECT ... FOR UPDATE SKIP LOCKED, the raised events
            recorded on the tickets, `sla_proximo` recomputed, the notifications written
            (Synology DM and mail to the assignee, and on a breach to both heads) and their
            delivery enqueued in chunks after commit.

Medians over the rounds (the first is a warm-up and not counted), with the CPU seconds of this
process and of PostgreSQL. The statements of the sweep are counted with 10 due tickets and with
the round's 1,000: the count must not grow. Target (issue): the sweep costs at most 3x the
baseline. Missing a target prints FAIL; only an error exits non-zero.

Delivery tasks go to a queue of their own that no worker reads (bench/ingest_settings.py),
deleted afterwards. Needs PostgreSQL (BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432) and optionally Redis (BENCH_REDIS_URL).
"""

import argparse
import base64
import io
import os
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/sla.py`: import the project (and the `bench` package) from the root.
sys.path[0] = str(ROOT)

from bench.api import drop_database, recreate_database  # noqa: E402

DB_NAME = "incidencias_bench_sla"
CELERY_QUEUE = "incidencias-bench-sla"
TARGET_RATIO = 3.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
AGENTS, HEADS = 20, 2


def postgres_cpu() -> float:
    """CPU seconds used so far by every process named postgres (the server is local)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        head, _, tail = stat.rpartition(")")
        if head.partition("(")[2] == "postgres":
            fields = tail.split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def redis_url() -> str | None:
    """BENCH_REDIS_URL when Redis answers there, else None (the embedded broker is used)."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:
        return None
    return url


def drop_queue(url: str | None) -> None:
    if url:
        import redis

        redis.Redis.from_url(url).delete(CELERY_QUEUE, f"_kombu.binding.{CELERY_QUEUE}")


def environment(tmp: Path, database_url: str, redis: str | None) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.ingest_settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": "b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "CACHE_KEY_PREFIX": "incidencias-bench-sla",
            "BENCH_CELERY_QUEUE": CELERY_QUEUE,
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "VAR_DIR": str(tmp),
            "STATIC_ROOT": str(tmp / "static"),
            "MEDIA_ROOT": str(tmp / "media"),
            "LOG_LEVEL": "WARNING",
            "ENV_FILE": "",
        }
    )
    if redis:
        os.environ["REDIS_URL"] = redis
    else:
        os.environ.pop("REDIS_URL", None)


class SynologyStandIn:
    """Registered as the Synology channel so rows are written as in production; never called
    (nothing reads the bench's queue)."""

    nombre = "synology"

    def enviar(self, notificacion):
        raise AssertionError("the bench delivers nothing")


def seed(n: int, rng: random.Random) -> list[int]:
    """The department, its people and policy, and `n` open tickets by COPY; their ids."""
    from django.db import connection

    from incidencias.models import Calendario, PoliticaSLA, Ticket
    from sso.models import Departamento, Usuario

    soporte = Departamento.objects.create(nombre="Soporte")
    calendario = Calendario.objects.create(
        nombre="Oficina", horario={str(d): [["08:00", "17:00"]] for d in range(5)}
    )
    PoliticaSLA.objects.create(
        departamento=soporte,
        prioridad="normal",
        primera_respuesta_min=120,
        resolucion_min=960,
        calendario=calendario,
    )
    personas = [
        Usuario(
            username=f"persona{i}",
            email=f"persona{i}@example.com",
            departamento=soporte,
            jefe=i < HEADS,
            id_synology=100 + i,
        )
        for i in range(AGENTS + HEADS)
    ]
    Usuario.objects.bulk_create(personas)
    agentes = [u.pk for u in personas[HEADS:]]

    ahora = datetime.now(UTC)
    columnas = [
        "numero", "asunto", "estado", "prioridad", "departamento_id", "asignado_id",
        "solicitante_nombre", "solicitante_email", "participantes", "correos_rebotados", "canal",
        "creado", "actualizado", "vence_primera_respuesta", "aviso_primera_respuesta",
        "vence_resolucion", "aviso_resolucion", "sla_proximo",
    ]  # fmt: skip
    buffer = io.StringIO()
    for i in range(n):
        creado = ahora - timedelta(minutes=rng.randint(0, 600))
        aviso_pr = ahora + timedelta(minutes=rng.randint(60, 6000))
        vence_pr = aviso_pr + timedelta(minutes=24)
        aviso_res = vence_pr + timedelta(minutes=rng.randint(60, 6000))
        vence_res = aviso_res + timedelta(minutes=192)
        fila = [
            str(100_000 + i), f"Sin servicio en el nodo {i % 977}", "abierto", "normal",
            str(soporte.pk), str(rng.choice(agentes)), f"Cliente {i}", f"cliente{i}@example.org",
            "[]", "[]", "correo", creado.isoformat(), creado.isoformat(), vence_pr.isoformat(),
            aviso_pr.isoformat(), vence_res.isoformat(), aviso_res.isoformat(),
            aviso_pr.isoformat(),
        ]  # fmt: skip
        buffer.write("\t".join(fila) + "\n")
    tabla = Ticket._meta.db_table
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {tabla} ({', '.join(columnas)}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cursor.execute(f"VACUUM ANALYZE {tabla}")
    return list(Ticket.objects.order_by("id").values_list("id", flat=True))


def make_due(ids: list[int], ahora: datetime) -> None:
    """These tickets become due now: 80% past the warning of their first response, 20% past
    its due date (outside the timing)."""
    from incidencias.models import Ticket

    corte = len(ids) * 4 // 5
    Ticket.objects.filter(pk__in=ids[:corte]).update(
        aviso_primera_respuesta=ahora - timedelta(minutes=1),
        vence_primera_respuesta=ahora + timedelta(minutes=30),
        sla_proximo=ahora - timedelta(minutes=1),
    )
    Ticket.objects.filter(pk__in=ids[corte:]).update(
        aviso_primera_respuesta=ahora - timedelta(minutes=30),
        vence_primera_respuesta=ahora - timedelta(minutes=1),
        sla_proximo=ahora - timedelta(minutes=30),
    )


def baseline(ahora: datetime) -> int:
    """One indexed SELECT of the due tickets: what the sweep cannot do without."""
    from incidencias import sla
    from incidencias.models import Ticket

    return len(
        list(
            Ticket.objects.select_related("departamento", "asignado")
            .filter(sla_proximo__lte=ahora, estado__in=sla.ACTIVOS, sla_pausado_en__isnull=True)
            .order_by("sla_proximo")[:5000]
        )
    )


def timed(fn) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cpu0, db0, t0 = own_cpu(), postgres_cpu(), time.perf_counter()
    with CaptureQueriesContext(connection) as consultas:
        resultado = fn()
    wall = time.perf_counter() - t0
    return {
        "wall": wall,
        "cpu": own_cpu() - cpu0,
        "db": postgres_cpu() - db0,
        "queries": len(consultas),
        "result": resultado,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--due", type=float, default=0.01, help="fraction due per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20260310)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile one more sweep")
    args = parser.parse_args()

    server_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    redis = redis_url()
    rng = random.Random(args.seed)
    print(
        f"SLA sweep: {args.tickets:,} open tickets, {args.due:.0%} due per round, "
        f"{args.rounds} rounds (+1 warm-up); PostgreSQL {server_url.rpartition('@')[2]}; "
        f"Redis {'yes' if redis else 'no'}"
    )
    recreate_database(server_url, DB_NAME)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sla-") as tmp:
            environment(Path(tmp), f"{server_url}/{DB_NAME}", redis)
            import django

            django.setup()
            from django.core.management import call_command

            from incidencias import notificaciones, sla
            from incidencias.models import Notificacion

            call_command("migrate", verbosity=0)
            notificaciones.canal_registrar(SynologyStandIn())
            drop_queue(redis)
            t0 = time.perf_counter()
            ids = seed(args.tickets, rng)
            print(f"seeded in {time.perf_counter() - t0:.1f} s")
            rng.shuffle(ids)
            por_ronda = max(int(args.tickets * args.due), 10)
            if por_ronda * (args.rounds + 2) + 10 > len(ids):
                raise SystemExit("not enough tickets for fresh due tickets in every round")
            lotes = iter(ids[i : i + por_ronda] for i in range(0, len(ids), por_ronda))

            # The statement count with 10 due tickets, then with a round's worth.
            pocos = next(lotes)[:10]
            ahora = datetime.now(UTC)
            make_due(pocos, ahora)
            pocas_consultas = timed(lambda: sla.sla_barrer(ahora=ahora))["queries"]

            resultados = {"baseline": [], "ours": []}
            for ronda in range(args.rounds + 1):
                ahora = datetime.now(UTC)
                make_due(next(lotes), ahora)
                b = timed(lambda ahora=ahora: baseline(ahora))
                o = timed(lambda ahora=ahora: sla.sla_barrer(ahora=ahora))
                barrido = o["result"]
                if b["result"] != barrido.avisos + barrido.incumplidos:
                    raise SystemExit(f"the sweep raised {barrido} for {b['result']} due tickets")
                if ronda:
                    resultados["baseline"].append(b)
                    resultados["ours"].append(o)
                print(
                    f"  round {ronda}{' (warm-up)' if not ronda else ''}: "
                    f"baseline {b['wall'] * 1000:.1f} ms, sweep {o['wall'] * 1000:.1f} ms "
                    f"({barrido.avisos} warnings, {barrido.incumplidos} breaches, "
                    f"{o['queries']} statements)"
                )
            filas = Notificacion.objects.count()
            if args.profile:
                import cProfile
                import pstats

                ahora = datetime.now(UTC)
                make_due(next(lotes), ahora)
                perfil = cProfile.Profile()
                perfil.runcall(sla.sla_barrer, ahora=ahora)
                pstats.Stats(perfil).sort_stats("cumulative").print_stats(30)
    finally:
        drop_queue(redis)
        if not args.keep_db:
            drop_database(server_url, DB_NAME)

    def med(nombre, campo):
        return statistics.median(r[campo] for r in resultados[nombre])

    print(f"\nMedians over {args.rounds} rounds of {por_ronda:,} due tickets:")
    print(f"  {'':10} {'wall ms':>9} {'our CPU ms':>11} {'PG CPU ms':>10} {'statements':>11}")
    for nombre in ("baseline", "ours"):
        print(
            f"  {nombre:10} {med(nombre, 'wall') * 1000:9.1f} {med(nombre, 'cpu') * 1000:11.1f} "
            f"{med(nombre, 'db') * 1000:10.1f} {med(nombre, 'queries'):11.0f}"
        )
    print(f"  notification rows written in all: {filas:,}")
    ratio = med("ours", "wall") / med("baseline", "wall")
    ok_ratio = ratio <= TARGET_RATIO
    print(
        f"\nsweep / baseline: {ratio:.2f}x (target <= {TARGET_RATIO:.0f}x): "
        f"{'PASS' if ok_ratio else 'FAIL'}"
    )
    muchas = int(max(r["queries"] for r in resultados["ours"]))
    ok_queries = muchas <= pocas_consultas
    print(
        f"statements: {pocas_consultas} with 10 due tickets, {muchas} with {por_ronda:,} "
        f"(must not grow): {'PASS' if ok_queries else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
