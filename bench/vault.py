"""Benchmark: the credential vault's Integra API on 10,000 credentials.

    .venv/bin/python bench/vault.py [--rounds 5] [--duration 5] [--keep-db] [--help]

1. Listing, in-process (Django's test client, DEBUG off): the queries of
   `GET /api/integra/credenciales?limite=50` for the first page and for a page deep in the list
   (`despues`), with 100 credentials and with 10,000; and of the seed's unpaged list. Target:
   the same count whatever the page and the size (no query per row).
2. Reveal, `POST /api/integra/credenciales/{id}/revelar` (Bearer user token, permission and
   department check, audit row and bitácora row, AES-GCM decryption), against
   `bench/baseline_vault.py`: a DRF view running the same check as one SELECT and the same two
   INSERTs in one transaction through a plain psycopg cursor, in the same run. Target: portal
   >= 60% of the baseline's requests/s. Before timing, both must answer 200 with the same
   `data`, and both must answer 404 for a credential of another department.

Same gunicorn (3 sync workers by default; see bench/api.py), same database of its own
(`incidencias_bench_vault`, dropped and recreated, dropped afterwards unless --keep-db),
interleaved rounds (ABBA), medians and ratios, CPU per request from /proc. Missing a target
prints FAIL; an error (non-2xx from wrk, a wrong answer, a crash) exits 1.
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

LIST_PATH = "/api/integra/credenciales"
DB_NAME = "incidencias_bench_vault"
CREDENTIALS = 10_000
SMALL = 100
PAGE = 50
TARGET = 0.60

DONE = WRK_SCRIPT[WRK_SCRIPT.index("done = ") :] % {}  # the BENCH line bench/api.py parses

POST_SCRIPT = """\
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %(authorization)s

"""


def portal_path(pk: int) -> str:
    return f"/api/integra/credenciales/{pk}/revelar"


def baseline_path(pk: int) -> str:
    return f"/bench/baseline-revelar/{pk}"


# --- Setup -----------------------------------------------------------------------------------


def seed_people() -> dict:
    """Two departments; a revealer of Soporte (unit dev member) in a group with the vault's
    reading and reveal permissions, and a user token for them."""
    from django.contrib.auth.models import Group, Permission

    from credenciales.models import MiembroUnidad, TipoCredencial
    from sso.models import Departamento, Unidad, Usuario
    from sso.tokens import token_emitir

    soporte = Departamento.objects.create(nombre="Soporte")
    redes = Departamento.objects.create(nombre="Redes")
    dev = Unidad.objects.create(departamento=soporte, clave="dev", nombre="Desarrollo")
    ops = Unidad.objects.create(departamento=soporte, clave="ops", nombre="Operaciones")
    grupo = Group.objects.create(name="Bóveda: revelar")
    grupo.permissions.set(
        Permission.objects.filter(
            content_type__app_label="credenciales",
            codename__in=["view_credencial", "view_tipocredencial", "revelar_credencial"],
        )
    )
    usuario = Usuario.objects.create_user(
        username="bvault",
        email="bvault@example.com",
        password=None,
        nombre="Bench V.",
        departamento=soporte,
    )
    usuario.groups.add(grupo)
    MiembroUnidad.objects.create(usuario=usuario, unidad=dev)
    _, token = token_emitir(usuario=usuario, ip="127.0.0.1")
    tipos = [
        TipoCredencial.objects.create(nombre=n) for n in ("Servidor", "Base de datos", "Correo")
    ]
    return {
        "token": token,
        "usuario": usuario,
        "departamentos": [soporte, redes],
        "unidades": [None, dev, ops],
        "tipos": tipos,
    }


def seed_credentials(people: dict, start: int, stop: int) -> None:
    """Credentials `start`..`stop`, spread over departments, units and types, in bulk."""
    from credenciales.models import Credencial

    soporte, redes = people["departamentos"]
    filas = []
    for i in range(start, stop):
        departamento = redes if i % 4 == 3 else soporte
        unidad = people["unidades"][i % 3] if departamento == soporte else None
        filas.append(
            Credencial(
                tipo=people["tipos"][i % 3],
                departamento=departamento,
                unidad=unidad,
                usuario=f"cuenta{i:05d}@example.com",
                clave=f"Clave-{i:05d}-Ω",
                nota=f"Nota de la cuenta {i}",
                creado_por=people["usuario"],
            )
        )
    Credencial.objects.bulk_create(filas, batch_size=1000)


def listing_queries(token: str) -> dict:
    """Queries of the list's first page, of a page deep in it, and of the unpaged list."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")

    def run(params) -> tuple[int, int, dict]:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST_PATH, params)
        if response.status_code != 200:
            raise BenchError(f"{LIST_PATH} {params}: {response.status_code} {response.content!r}")
        return len(ctx.captured_queries), len(response.json()["data"]), response

    run({"limite": PAGE})  # warm: the consumer of caches, not the figure
    first, rows, response = run({"limite": PAGE})
    # Walk to the middle of the list through the Link headers' cursors (the real way).
    from credenciales import selectors
    from sso.models import Usuario

    visibles = selectors.credenciales_visibles(Usuario.objects.get(username="bvault"))
    total = visibles.count()
    middle = visibles.values_list("pk", flat=True)[total // 2]
    deep, deep_rows, _ = run({"limite": PAGE, "despues": middle})
    unpaged, all_rows, _ = run({})
    return {
        "visible": total,
        "first": first,
        "first_rows": rows,
        "deep": deep,
        "deep_rows": deep_rows,
        "unpaged": unpaged,
        "unpaged_rows": all_rows,
        "next": "Link" in response.headers,
    }


# --- HTTP ------------------------------------------------------------------------------------


def post(port: int, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body or {}),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {"raw": raw[:200].decode(errors="replace")}


def wait_ready(proc, port: int, pk: int, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            status, answer = post(port, portal_path(pk), "0|x")
        except OSError:
            time.sleep(0.2)
            continue
        if status == 401:
            return
        raise BenchError(f"the reveal answered {status} while starting: {answer}")
    raise BenchError("gunicorn did not answer within 30 s")


def check_answers(port: int, token: str, pk: int, foreign: int, clave: str) -> None:
    """Both answer 200 with the same data and the clear value; both 404 another department's."""
    from credenciales.models import AccesoCredencial

    body = {"motivo": "bench"}
    answers = {}
    for label, path in (("portal", portal_path(pk)), ("baseline", baseline_path(pk))):
        before = AccesoCredencial.objects.filter(credencial_id=pk, accion="revelar").count()
        status, answer = post(port, path, token, body)
        if status != 200 or answer.get("success") is not True:
            raise BenchError(f"{label}: {status} {answer}")
        after = AccesoCredencial.objects.filter(credencial_id=pk, accion="revelar").count()
        if after != before + 1:
            raise BenchError(f"{label}: no audit row was written")
        answers[label] = answer
        status, refused = post(port, path.replace(str(pk), str(foreign)), token, body)
        if status != 404 or refused.get("success") is not False:
            raise BenchError(f"{label}: another department's credential gave {status} {refused}")
    if answers["portal"] != answers["baseline"]:
        raise BenchError(f"answers differ: {answers}")
    if answers["portal"]["data"] != {"id": pk, "clave": clave}:
        raise BenchError(f"unexpected answer {answers['portal']}")


def write_script(path: Path, token: str) -> None:
    path.write_text(
        POST_SCRIPT
        % {
            "body": json.dumps(json.dumps({"motivo": "bench"})),
            "authorization": json.dumps(f"Bearer {token}"),
        }
        + DONE
    )


# --- Main ------------------------------------------------------------------------------------


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
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DB_NAME} afterwards")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50 or not 1 <= args.duration <= 120 or args.warmup < 1:
        parser.error("rounds in 1..50, duration in 1..120 s, warmup >= 1 s")
    if not 1 <= args.wrk_threads <= args.connections:
        parser.error("1 <= wrk-threads <= connections")
    if shutil.which("wrk") is None:
        print("bench/vault.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2

    server_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    tmp = Path(tempfile.mkdtemp(prefix="bench-vault-"))
    proc = None
    try:
        env = environment(tmp, f"{server_url}/{DB_NAME}")
        env["CACHE_KEY_PREFIX"] = "incidencias-bench-vault"
        os.environ.update(env)
        recreate_database(server_url, DB_NAME)

        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        people = seed_people()
        seed_credentials(people, 0, SMALL)
        small = listing_queries(people["token"])
        started = time.perf_counter()
        seed_credentials(people, SMALL, CREDENTIALS)
        seeded = time.perf_counter() - started
        large = listing_queries(people["token"])
        settle(server_url)

        from credenciales.models import Credencial

        # A credential of the revealer's unit in the middle of the table, one of Redes.
        pk = Credencial.objects.get(usuario=f"cuenta{CREDENTIALS // 2 + 1:05d}@example.com").pk
        clave = Credencial.objects.get(pk=pk).clave
        foreign = Credencial.objects.filter(departamento__nombre="Redes").order_by("pk")[0].pk

        port = free_port()
        log_path = tmp / "gunicorn.log"
        proc = start_gunicorn(env, port, args, log_path)
        wait_ready(proc, port, pk, log_path)
        check_answers(port, people["token"], pk, foreign, str(clave))

        print(f"Credential vault: {CREDENTIALS} credentials (seeded in {seeded:.1f} s)")
        print(f"\nListing GET {LIST_PATH}, queries per request (in-process, DEBUG off):")
        print(f"  {'':<34} {SMALL:>6} rows  {CREDENTIALS:>6} rows")
        rows = [
            (f"page 1 (limite={PAGE})", "first"),
            (f"page in the middle (despues=…, limite={PAGE})", "deep"),
            ("the seed's unpaged list", "unpaged"),
        ]
        for label, key in rows:
            print(f"  {label:<34} {small[key]:>6}       {large[key]:>6}")
        print(
            f"  (visible to the revealer: {small['visible']} and {large['visible']}; "
            f"rows answered {large['first_rows']}, {large['deep_rows']}, {large['unpaged_rows']})"
        )
        constant = (
            small["first"] == large["first"]
            and small["deep"] == large["deep"] == large["first"] + 1
            and small["unpaged"] == large["unpaged"]
            and large["first_rows"] == large["deep_rows"] == PAGE
        )

        server = f"gunicorn {args.worker_class}, {args.workers} workers"
        if args.worker_class == "gthread":
            server += f" x {args.threads} threads"
        print(
            f"\nPOST {portal_path(pk)} vs baseline POST {baseline_path(pk)} "
            "(bench/baseline_vault.py)"
        )
        print(
            f"{server}; wrk -t{args.wrk_threads} -c{args.connections}; {args.rounds} rounds x "
            f"{args.duration} s, interleaved; same data from both, 404 from both for another "
            f"department; PostgreSQL {DB_NAME}; DEBUG off; {os.cpu_count()} cores; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        script = tmp / "revelar.lua"
        write_script(script, people["token"])
        urls = {
            "portal": f"http://127.0.0.1:{port}{portal_path(pk)}",
            "baseline": f"http://127.0.0.1:{port}{baseline_path(pk)}",
        }
        runs = measure(urls, script, args, proc.pid)
        ratio = report_throughput(runs)

        print("\nSummary")
        print(
            f"  listing: {large['first']} queries for page 1 and {large['deep']} deep in the "
            f"list (the cursor's key), the same at {SMALL} and {CREDENTIALS} rows; unpaged "
            f"{large['unpaged']}: {verdict(constant)}"
        )
        print(
            f"  reveal: portal {median_of(runs['portal'], 'rps'):.0f} req/s, baseline "
            f"{median_of(runs['baseline'], 'rps'):.0f} req/s: {ratio:.1%} (target >= "
            f"{TARGET:.0%}): {verdict(ratio >= TARGET)}"
        )
    except BenchError as exc:
        print(f"\nbench/vault.py: ERROR: {exc}", file=sys.stderr)
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
