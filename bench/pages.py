"""Benchmark: the agents' queue, a search and a long ticket, each against its bare SQL.

    .venv/bin/python bench/pages.py [--runs 40] [--tickets 1000000] [--entries 3000000]
                                    [--regenerate] [--drop]

On PostgreSQL, in a database of its own (`incidencias_bench_pages`, kept between runs: a
marker table says it is complete, so only the first run generates), 1,000,000 tickets and
3,000,000 thread entries (and an attachment on one entry in twenty) go in by COPY: six
departments of different sizes, every state (most tickets solved or closed, the recent ones
open), priorities, channels, SLA due dates, Spanish subjects and texts composed from a
vocabulary, so the full-text search has something to find. One open ticket of the largest
department has 50 messages.

The search vectors are written in the same COPY instead of by the insert triggers: each
distinct subject, text and requester is given to PostgreSQL's own `to_tsvector` once, and a
row's vector is their concatenation as the trigger's `||` makes it. Triggers and foreign keys
are off for the load (`session_replication_role = replica`) and the secondary indexes are
dropped before it and built after it. A sample of rows is checked against what the triggers
compute: any difference stops the bench.

Measured, each as the median over `--runs` of the server time of one request (the Django
application called in-process through WSGI, as gunicorn would: middleware, session and user,
view, template, response) against a baseline in the same run: the bare SQL the page needs for
the same rows, through a plain psycopg connection:

  queue   page of 50, one department (its head), open states, sorted by SLA due date;
  search  a full-text query over everything its agent may see, newest first;
  ticket  the ticket with 50 messages: the ticket, its thread with authors, attachments.

Each page's time comes with the CPU time of this process in it (the machine is shared: wall
time includes waiting for a core). Also printed, without targets: EXPLAIN ANALYZE of the
queue's statement at a cursor 5,000 rows in, `cola()` at the first and that page, `tablero()`.

Also measured, without a target: the ticket page with its ticket alone in a database of its
own (`incidencias_bench_pages_uno`, made and dropped by the run) against the same page among a
million; the floor, the lightest staff page (`/cuenta/clave`: session,
user, middleware, the layout and a small form, no ticket data), and each page's time above it
against its baseline: what the page's own work costs.

Targets (issue): each page <= 3x its baseline; the queue < 100 ms at the median. Missing a
target prints FAIL; only an error exits non-zero. The pages are the portal's own (the queue
and the ticket page), served with the project's settings and DEBUG off.
"""

import argparse
import base64
import io
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import psycopg  # noqa: E402

from bench.api import drop_database, recreate_database  # noqa: E402

DB_NAME = "incidencias_bench_pages"
GENERATOR = 1  # bump when the generated data changes: the next run regenerates
TARGET_RATIO = 3.0
TARGET_QUEUE_MS = 100.0
OPEN_STATES = ("nuevo", "abierto", "en_espera")
SEARCH = "impresora"

# The URL of each page.
PAGINAS = {
    "queue": lambda c: (
        f"/tickets/?departamento={c.departamento}"
        "&estado=nuevo&estado=abierto&estado=en_espera&orden=sla"
    ),
    "search": lambda c: f"/tickets/?q={SEARCH}&orden=-creado",
    "ticket": lambda c: f"/tickets/{c.numero_largo}/",
}

# The lightest staff page (the password change form): the floor every page stands on.
PISO = "/cuenta/clave"

DEPARTAMENTOS = [  # name, share of the tickets
    ("Soporte", 0.34),
    ("Redes", 0.22),
    ("Sistemas", 0.16),
    ("Facturación", 0.12),
    ("Ventas", 0.09),
    ("Infraestructura", 0.06),
]  # and 1% without a department
AGENTES = 15

# --- Text ---------------------------------------------------------------------------------

PROBLEMAS = [
    "La impresora no imprime", "Sin conexión a internet", "El correo no sincroniza",
    "No puedo entrar al sistema", "La VPN se desconecta", "Pantalla azul al iniciar",
    "El teléfono IP no tiene tono", "Factura con monto incorrecto", "Solicitud de acceso",
    "Cambio de contraseña", "El servidor responde lento", "Error al generar el reporte",
    "La red inalámbrica no aparece", "Se borró una carpeta compartida", "El escáner no envía",
    "Cotización de licencias", "El monitor parpadea", "No llegan las notificaciones",
    "Respaldo fallido", "Certificado vencido", "La aplicación se cierra sola",
    "Cuenta bloqueada", "Duplicado de cobro", "Instalación de programa", "Ruido en la línea",
]  # fmt: skip
LUGARES = [
    "en la oficina central", "en la sucursal de Heredia", "en el tercer piso", "en bodega",
    "en recepción", "en contabilidad", "en la sala de reuniones", "desde la casa",
    "en el laboratorio", "en la sucursal de Cartago", "en el centro de datos", "en ventas",
]  # fmt: skip
FRASES = [
    "Desde ayer en la mañana el equipo no responde y ya lo reiniciamos dos veces.",
    "El cliente indica que el problema empezó después de la actualización del viernes.",
    "Adjunto una captura de pantalla con el mensaje de error que aparece.",
    "Revisamos el cable de red y el puerto del switch sin encontrar fallas.",
    "La impresora muestra un atasco de papel aunque la bandeja está vacía.",
    "Necesitamos una solución urgente porque afecta la facturación del día.",
    "Se reinstaló el controlador y el fallo persiste en todas las computadoras.",
    "Por favor confirmar si el cambio se puede programar fuera de horario.",
    "El usuario no recuerda la contraseña y la cuenta quedó bloqueada.",
    "El enlace del proveedor presenta intermitencia según el monitoreo.",
    "Quedo atento a sus comentarios, muchas gracias por la ayuda.",
    "Ya se escaló el caso al proveedor y esperamos respuesta hoy.",
    "Se aplicó el parche de seguridad y se verificó el servicio.",
    "El respaldo nocturno terminó con errores de espacio en disco.",
    "La red inalámbrica de invitados no entrega dirección IP.",
    "El monto cobrado no coincide con la orden de compra aprobada.",
    "Solicito acceso a la carpeta compartida del departamento de ventas.",
    "El certificado del sitio vence la próxima semana y hay que renovarlo.",
    "Al abrir el reporte mensual la aplicación se queda congelada.",
    "Se cambió el tóner de la impresora pero sigue imprimiendo manchas.",
    "El teléfono de recepción no recibe llamadas externas desde el lunes.",
    "El correo llega con retraso de varias horas a los buzones compartidos.",
    "Verificamos la configuración del firewall y todo está en orden.",
    "El equipo portátil se calienta mucho y se apaga sin aviso.",
    "Gracias, con eso quedó resuelto; pueden cerrar el caso.",
    "Sigue sin funcionar, ¿pueden enviar a un técnico al sitio?",
    "Se programó la visita técnica para mañana a las nueve.",
    "La licencia del antivirus expiró en cinco equipos de contabilidad.",
    "El servidor de archivos responde lento en horas de la tarde.",
    "Nota interna: el cliente tiene contrato de soporte prioritario.",
]  # fmt: skip
NOMBRES = [
    "María", "José", "Ana", "Luis", "Carmen", "Carlos", "Laura", "Jorge", "Sofía", "Andrés",
    "Daniela", "Ricardo", "Paola", "Fernando", "Valeria", "Diego", "Gabriela", "Mauricio",
]  # fmt: skip
APELLIDOS = [
    "Rodríguez", "Vargas", "Jiménez", "Mora", "Rojas", "Araya", "Solano", "Chaves", "Castro",
    "Hernández", "Ramírez", "Alvarado", "Quesada", "Villalobos", "Campos", "Salazar",
]  # fmt: skip


class Vectores:
    """Search vectors as the triggers compute them, from each distinct string's vector (asked of
    PostgreSQL once) joined as tsvector `||` joins them: the right side's positions moved on by
    the largest position of the left. The row's vector is written as the two texts side by
    side; PostgreSQL's tsvector input merges a lexeme present on both sides."""

    LEXEMA = re.compile(r"'((?:[^']|'')*)'(?::([0-9A-D,]+))?")

    def __init__(self, conn, textos: list[str], sql: str):
        """Each text's vector through `sql` (an expression of `t`)."""
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT ({sql})::text FROM unnest(%s::text[]) "  # noqa: S608 - fixed expressions
                "WITH ORDINALITY AS x(t, n) ORDER BY n",
                [textos],
            )
            self.textos = [r[0] for r in cur.fetchall()]
        self.leidos = [self.leer(t) for t in self.textos]
        self.maximos = [
            max((int(p.rstrip("ABCD")) for _lex, ps in v for p in ps), default=0)
            for v in self.leidos
        ]
        self._movidos: dict[tuple[int, int], str] = {}

    @classmethod
    def leer(cls, texto: str):
        return [(m.group(1), (m.group(2) or "").split(",")) for m in cls.LEXEMA.finditer(texto)]

    def movido(self, i: int, desplazamiento: int) -> str:
        """Vector `i` as text, its positions moved on by `desplazamiento`."""
        clave = (i, desplazamiento)
        texto = self._movidos.get(clave)
        if texto is None:
            partes = []
            for lexema, ps in self.leidos[i]:
                nuevas = []
                for p in ps:
                    numero = p.rstrip("ABCD")
                    nuevas.append(f"{min(int(numero) + desplazamiento, 16383)}{p[len(numero) :]}")
                partes.append(f"'{lexema}':{','.join(nuevas)}")
            texto = self._movidos[clave] = " ".join(partes)
        return texto

    def tras(self, izquierda: "Vectores", i: int, j: int) -> str:
        """`izquierda`'s vector i || this one's vector j, as text."""
        derecha = self.movido(j, izquierda.maximos[i])
        return f"{izquierda.textos[i]} {derecha}" if izquierda.textos[i] else derecha


# --- Environment and database --------------------------------------------------------------


def environment(tmp: Path, database_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.pages_settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": "b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DATABASE_URL": database_url,
            "CACHE_KEY_PREFIX": "incidencias-bench-pages",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "VAR_DIR": str(tmp),
            "STATIC_ROOT": str(tmp / "static"),
            "MEDIA_ROOT": str(tmp / "media"),
            "LOG_LEVEL": "WARNING",
            "ENV_FILE": "",
        }
    )
    # Redis as a deployment has it (sessions and permissions are read from it), when it answers.
    from bench.ingest import redis_url

    if redis := redis_url():
        os.environ["REDIS_URL"] = redis
    else:
        os.environ.pop("REDIS_URL", None)
    (tmp / "static").mkdir(exist_ok=True)


def database_ready(server_url: str, tickets: int, regenerate: bool) -> bool:
    """Whether the database holds this generator's data for `tickets` tickets; if not, it is
    (dropped and) created empty. A run stopped halfway leaves no marker, so it starts over."""
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        existe = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
    if existe and not regenerate:
        with psycopg.connect(f"{server_url}/{DB_NAME}") as conn:
            if conn.execute("SELECT to_regclass('bench_pages_marca')").fetchone()[0]:
                fila = conn.execute("SELECT generador, tickets FROM bench_pages_marca").fetchone()
                if fila == (GENERATOR, tickets):
                    return True
    recreate_database(server_url, DB_NAME)
    return False


# --- Generation ----------------------------------------------------------------------------


def seed(n_tickets: int, n_entries: int, rng: random.Random, server_url: str) -> None:
    """People with the ORM, then tickets, entries and attachments by COPY (see the module)."""
    from django.db import connection

    from incidencias.models import Adjunto, DetalleTicket, Ticket
    from sso.models import Departamento, Usuario

    t0 = time.perf_counter()
    departamentos, agentes = [], {}
    for nombre, _parte in DEPARTAMENTOS:
        d = Departamento.objects.create(nombre=nombre)
        departamentos.append(d.pk)
        gente = [
            Usuario(
                username=f"{nombre.lower()[:5]}{i}",
                email=f"{nombre.lower()[:5]}{i}@example.com",
                nombre=f"{rng.choice(NOMBRES)} {rng.choice(APELLIDOS)}",
                departamento=d,
                jefe=i == 0,
                acceso_ticket=True,
            )
            for i in range(AGENTES + 1)
        ]
        Usuario.objects.bulk_create(gente)
        agentes[d.pk] = [u.pk for u in gente]
    pesos = [p for _n, p in DEPARTAMENTOS]

    asuntos = [f"{p} {lugar}" for p in PROBLEMAS for lugar in LUGARES]
    rng.shuffle(asuntos)
    respuestas = [f"RE: {a}" for a in asuntos]
    personas = []
    for i in range(3000):
        nombre = f"{rng.choice(NOMBRES)} {rng.choice(APELLIDOS)}"
        usuario = nombre.lower().replace(" ", ".").translate(str.maketrans("áéíóú", "aeiou"))
        personas.append((nombre, f"{usuario}{i}@cliente{i % 40}.example.org"))
    textos = [" ".join(rng.sample(FRASES, rng.randint(2, 5))) for _i in range(6000)]
    with psycopg.connect(f"{server_url}/{DB_NAME}", autocommit=True) as conn:
        espanol_a = "setweight(to_tsvector('pg_catalog.spanish', t), 'A')"
        v_asuntos = Vectores(conn, asuntos, espanol_a)
        v_respuestas = Vectores(conn, respuestas, espanol_a)
        v_personas = Vectores(
            conn,
            [f"{n} {e}" for n, e in personas],
            "setweight(to_tsvector('pg_catalog.simple', t), 'B')",
        )
        v_textos = Vectores(
            conn, textos, "setweight(to_tsvector('pg_catalog.spanish', left(t, 100000)), 'B')"
        )
    print(f"  vocabulary and its vectors: {time.perf_counter() - t0:.1f} s")

    ahora = datetime.now(UTC).replace(microsecond=0)
    inicio = ahora - timedelta(days=3 * 365)
    paso = (ahora - inicio) / n_tickets
    # Share of the entries per ticket: 1 to 5 (3 on average), scaled to n_entries.
    por_ticket = n_entries / n_tickets
    tabla_t, tabla_d, tabla_a = (m._meta.db_table for m in (Ticket, DetalleTicket, Adjunto))
    col_t = [
        "id", "numero", "asunto", "estado", "prioridad", "departamento_id", "asignado_id",
        "solicitante_nombre", "solicitante_email", "participantes", "correos_rebotados", "canal",
        "creado", "actualizado", "primera_respuesta_en", "resuelto_en", "cerrado_en",
        "vence_primera_respuesta", "vence_resolucion", "aviso_primera_respuesta",
        "aviso_resolucion", "sla_pausado_en", "busqueda",
    ]  # fmt: skip
    col_d = [
        "id", "ticket_id", "tipo", "automatico", "autor_id", "de", "para", "cc", "bcc",
        "responder_a", "asunto", "texto", "html", "fecha", "message_id", "in_reply_to",
        "\"references\"", "headers", "sistema", "nota", "rebotados", "fuente", "clave_dedup",
        "crudo", "creado", "busqueda",
    ]  # fmt: skip
    col_a = ["detalle_id", "nombre", "content_type", "tamano", "sha256", "archivo", "content_id",
             "en_linea"]  # fmt: skip

    with connection.cursor() as cur:
        indices = []
        for tabla in (tabla_t, tabla_d, tabla_a):
            cur.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
                [tabla],
            )
            indices += cur.fetchall()
        for nombre, _def in indices:
            cur.execute(f'DROP INDEX "{nombre}"')
    connection.close()

    # Tickets and entries stream through two connections at once: PostgreSQL takes each COPY
    # in its own process while this one composes the rows. No triggers, no foreign-key checks.
    conexiones = [psycopg.connect(f"{server_url}/{DB_NAME}") for _ in range(2)]
    for conn in conexiones:
        conn.execute("SET session_replication_role = replica")
    largo = None  # the ticket with 50 messages
    prioridades = ["baja"] * 20 + ["normal"] * 55 + ["alta"] * 20 + ["urgente"] * 5
    canales = ["correo"] * 70 + ["portal"] * 15 + ["api"] * 10 + ["chat"] * 5
    id_detalle = 0
    adjuntos = io.StringIO()
    t1 = time.perf_counter()
    with (
        conexiones[0].cursor().copy(f"COPY {tabla_t} ({', '.join(col_t)}) FROM STDIN") as copy_t,
        conexiones[1].cursor().copy(f"COPY {tabla_d} ({', '.join(col_d)}) FROM STDIN") as copy_d,
    ):
        for i in range(1, n_tickets + 1):
            creado = inicio + paso * i
            reciente = ahora - creado < timedelta(days=30)
            r = rng.random()
            if reciente:
                estado = ("nuevo", "abierto", "en_espera", "resuelto", "cerrado")[
                    0 if r < 0.25 else 1 if r < 0.5 else 2 if r < 0.6 else 3 if r < 0.8 else 4
                ]
            else:
                estado = "cerrado" if r < 0.9 else "resuelto" if r < 0.98 else "abierto"
            if rng.random() < 0.01:
                dep, asignado = None, None
            else:
                dep = rng.choices(departamentos, pesos)[0]
                asignado = rng.choice(agentes[dep]) if rng.random() < 0.8 else None
            if largo is None and reciente and dep == departamentos[0] and estado == "abierto":
                largo = i
            a = rng.randrange(len(asuntos))
            p = rng.randrange(len(personas))
            nombre, correo = personas[p]
            respondido = estado != "nuevo" and rng.random() < 0.9
            primera = creado + timedelta(minutes=rng.randint(5, 600)) if respondido else None
            resuelto = (
                creado + timedelta(hours=rng.randint(1, 240))
                if estado in ("resuelto", "cerrado")
                else None
            )
            cerrado = resuelto + timedelta(days=2) if estado == "cerrado" else None
            if dep is not None:
                vence_pr, aviso_pr = creado + timedelta(hours=4), creado + timedelta(hours=3)
                vence_res, aviso_res = creado + timedelta(days=3), creado + timedelta(hours=58)
            else:
                vence_pr = aviso_pr = vence_res = aviso_res = None
            pausado = creado + timedelta(hours=5) if estado == "en_espera" else None
            fila = [
                str(i), str(i), asuntos[a], estado, rng.choice(prioridades),
                str(dep) if dep else "\\N", str(asignado) if asignado else "\\N",
                nombre, correo, "[]", "[]", rng.choice(canales),
                creado.isoformat(), (resuelto or creado).isoformat(),
                *(v.isoformat() if v else "\\N" for v in (
                    primera, resuelto, cerrado, vence_pr, vence_res, aviso_pr, aviso_res, pausado
                )),
                v_personas.tras(v_asuntos, a, p),
            ]  # fmt: skip
            copy_t.write("\t".join(fila) + "\n")

            cuantas = 50 if i == largo else max(1, round(rng.uniform(0.5, 2 * por_ticket - 0.5)))
            agentes_dep = agentes[dep] if dep else agentes[departamentos[0]]
            for k in range(cuantas):
                id_detalle += 1
                t = rng.randrange(len(textos))
                fecha = (creado + timedelta(minutes=37 * k)).isoformat()
                if k == 0 or rng.random() < 0.35:
                    tipo, autor, de = "entrante", "\\N", correo
                    if k == 0:
                        asunto_e = asuntos[a]
                        vec = v_textos.tras(v_asuntos, a, t)
                    else:
                        asunto_e = respuestas[a]
                        vec = v_textos.tras(v_respuestas, a, t)
                    message_id = f"<{id_detalle}.{i}@bench.example>"
                else:
                    r = rng.random()
                    tipo = "respuesta" if r < 0.6 else "nota" if r < 0.8 else "evento"
                    autor, de, asunto_e = str(rng.choice(agentes_dep)), "", ""
                    vec, message_id = v_textos.textos[t], ""
                fila_d = [
                    str(id_detalle), str(i), tipo, "", autor, de, "", "", "", "", asunto_e,
                    textos[t], "", fecha, message_id, "", "", "{}", "", "", "[]", "", "", "",
                    fecha, vec,
                ]  # fmt: skip
                copy_d.write("\t".join(fila_d) + "\n")
                if (i == largo and k % 5 == 0) or rng.random() < 0.05:
                    sha = f"{id_detalle:064x}"
                    adjuntos.write(
                        f"{id_detalle}\tcaptura-{id_detalle}.png\timage/png\t"
                        f"{rng.randint(2000, 900000)}\t{sha}\tadjuntos/{sha[:2]}/{sha}\t\tf\n"
                    )
    with conexiones[1].cursor().copy(f"COPY {tabla_a} ({', '.join(col_a)}) FROM STDIN") as copy_a:
        copy_a.write(adjuntos.getvalue())
    for conn in conexiones:
        conn.commit()
        conn.close()
    print(
        f"  {n_tickets:,} tickets, {id_detalle:,} entries and their attachments by COPY: "
        f"{time.perf_counter() - t1:.1f} s"
    )
    t1 = time.perf_counter()
    with psycopg.connect(f"{server_url}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _nombre, definicion in indices:
            conn.execute(definicion)
        for tabla in (tabla_t, tabla_d, tabla_a):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{tabla}', 'id'), "  # noqa: S608 - our tables
                f"(SELECT COALESCE(MAX(id), 1) FROM {tabla}))"
            )
        conn.execute(f"SELECT setval('incidencias_ticket_numero_seq', {n_tickets})")
        print(f"  {len(indices)} indexes built: {time.perf_counter() - t1:.1f} s")
        t1 = time.perf_counter()
        for tabla in (tabla_t, tabla_d, tabla_a):
            conn.execute(f"VACUUM ANALYZE {tabla}")
        verificar(conn, n_tickets, id_detalle, rng)
        conn.execute(
            "CREATE TABLE bench_pages_marca (generador int, tickets bigint, entradas bigint, "
            "ticket_largo bigint, creado timestamptz DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO bench_pages_marca VALUES (%s, %s, %s, %s)",
            [GENERATOR, n_tickets, id_detalle, largo],
        )
    print(f"  vacuum, analyse and checks: {time.perf_counter() - t1:.1f} s")
    print(f"generated in {time.perf_counter() - t0:.1f} s")


def verificar(conn, n_tickets: int, n_entradas: int, rng: random.Random) -> None:
    """The vectors written by COPY must be the triggers' own, on a sample of rows."""
    tickets = rng.sample(range(1, n_tickets + 1), 2000)
    entradas = rng.sample(range(1, n_entradas + 1), 4000)
    malos_t = conn.execute(
        "SELECT count(*) FROM incidencias_ticket WHERE id = ANY(%s) AND busqueda IS DISTINCT FROM "
        "setweight(to_tsvector('pg_catalog.spanish', coalesce(asunto, '')), 'A') || "
        "setweight(to_tsvector('pg_catalog.simple', coalesce(solicitante_nombre, '') || ' ' || "
        "coalesce(solicitante_email, '')), 'B')",
        [tickets],
    ).fetchone()[0]
    malos_d = conn.execute(
        "SELECT count(*) FROM incidencias_detalleticket WHERE id = ANY(%s) AND busqueda IS "
        "DISTINCT FROM setweight(to_tsvector('pg_catalog.spanish', coalesce(asunto, '')), 'A') "
        "|| setweight(to_tsvector('pg_catalog.spanish', left(coalesce(texto, ''), 100000)), 'B')",
        [entradas],
    ).fetchone()[0]
    if malos_t or malos_d:
        raise SystemExit(
            f"search vectors differ from the triggers': {malos_t} of 2000 tickets, "
            f"{malos_d} of 4000 entries"
        )
    print("  search vectors equal the triggers' on 2,000 tickets and 4,000 entries")


# --- Baselines: the bare SQL each page needs -----------------------------------------------

_SLA = """CASE
  WHEN (t.primera_respuesta_en IS NULL AND t.vence_primera_respuesta <= coalesce(t.sla_pausado_en, %(ahora)s))
    OR t.primera_respuesta_en > t.vence_primera_respuesta
    OR (t.resuelto_en IS NULL AND t.vence_resolucion <= coalesce(t.sla_pausado_en, %(ahora)s))
    OR t.resuelto_en > t.vence_resolucion THEN 'incumplido'
  WHEN t.estado = 'en_espera' THEN 'pausado'
  WHEN (t.primera_respuesta_en IS NULL AND t.aviso_primera_respuesta <= coalesce(t.sla_pausado_en, %(ahora)s))
    OR (t.resuelto_en IS NULL AND t.aviso_resolucion <= coalesce(t.sla_pausado_en, %(ahora)s))
    THEN 'en_riesgo'
  ELSE 'ok' END"""  # noqa: E501
_FILA = f"""SELECT t.id, t.numero, t.asunto, t.estado, t.prioridad, t.solicitante_nombre,
  t.solicitante_email, t.canal, t.creado, t.actualizado, t.orden_sla, d.nombre, u.username,
  u.nombre, {_SLA},
  coalesce((SELECT max(e.creado) FROM incidencias_detalleticket e WHERE e.ticket_id = t.id),
           t.creado),
  (SELECT count(*) FROM incidencias_detalleticket e WHERE e.ticket_id = t.id
     AND e.tipo <> 'evento')
FROM incidencias_ticket t
LEFT JOIN sso_departamento d ON d.id = t.departamento_id
LEFT JOIN sso_usuario u ON u.id = t.asignado_id"""  # noqa: S608 - fixed text
BASE_COLA = (
    _FILA
    + """
WHERE t.departamento_id = %(dep)s AND t.estado IN ('nuevo', 'abierto', 'en_espera')
ORDER BY t.orden_sla, t.id LIMIT 51"""
)
BASE_BUSQUEDA = (
    _FILA  # noqa: S608 - fixed text
    + """
WHERE (t.departamento_id = %(dep)s OR t.asignado_id = %(yo)s)
  AND (t.busqueda @@ websearch_to_tsquery('spanish', %(q)s)
       OR EXISTS (SELECT 1 FROM incidencias_detalleticket e WHERE e.ticket_id = t.id
                  AND e.busqueda @@ websearch_to_tsquery('spanish', %(q)s)))
ORDER BY t.creado DESC, t.id DESC LIMIT 51"""
)
BASE_TICKET = [
    """SELECT t.id, t.numero, t.asunto, t.estado, t.prioridad, t.orden_sla, d.nombre,
  u.username, u.nombre FROM incidencias_ticket t
LEFT JOIN sso_departamento d ON d.id = t.departamento_id
LEFT JOIN sso_usuario u ON u.id = t.asignado_id
WHERE t.numero = %(numero)s AND (t.departamento_id = %(dep)s OR t.asignado_id = %(yo)s)""",
    """SELECT e.id, e.tipo, e.automatico, e.de, e.para, e.cc, e.asunto, e.texto, e.html,
  e.fecha, e.creado, u.username, u.nombre
FROM incidencias_detalleticket e LEFT JOIN sso_usuario u ON u.id = e.autor_id
WHERE e.ticket_id = %(ticket)s ORDER BY e.creado, e.id""",
    """SELECT a.id, a.detalle_id, a.nombre, a.tamano FROM incidencias_adjunto a
WHERE a.detalle_id = ANY(%(entradas)s) ORDER BY a.id""",
]


def base_cola(conn, p):
    return conn.execute(BASE_COLA, p).fetchall()


def base_busqueda(conn, p):
    return conn.execute(BASE_BUSQUEDA, p).fetchall()


def base_ticket(conn, p):
    (ticket,) = conn.execute(BASE_TICKET[0], p).fetchall()
    entradas = conn.execute(BASE_TICKET[1], {"ticket": ticket[0]}).fetchall()
    adjuntos = conn.execute(BASE_TICKET[2], {"entradas": [e[0] for e in entradas]}).fetchall()
    return [ticket, *entradas, *adjuntos]


# --- Measuring -----------------------------------------------------------------------------


class Servidor:
    """The Django application called through WSGI in-process, as a signed-in user."""

    def __init__(self, usuario):
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import Client

        cliente = Client()
        cliente.force_login(usuario)
        self.cookie = (
            f"{settings.SESSION_COOKIE_NAME}={cliente.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        self.app = WSGIHandler()

    def get(self, url: str) -> tuple[float, float, int, bytes]:
        """Wall and CPU seconds of this process, status and body of one GET."""
        ruta, _, consulta = url.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": ruta,
            "QUERY_STRING": consulta,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_COOKIE": self.cookie,
            "HTTP_ACCEPT_LANGUAGE": "es",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        estado = []
        t0, cpu0 = time.perf_counter(), time.process_time()
        respuesta = self.app(environ, lambda status, headers, exc_info=None: estado.append(status))
        try:
            cuerpo = b"".join(respuesta)
        finally:
            respuesta.close()
        return (
            time.perf_counter() - t0,
            time.process_time() - cpu0,
            int(estado[0].split()[0]),
            cuerpo,
        )


def consultas_de(servidor: Servidor, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as capturadas:
        servidor.get(url)
    return len(capturadas)


def ticket_a_solas(server_url: str, numero: int, jefe, url: str, runs: int) -> float:
    """The median server time of the ticket page with the ticket alone in a database of its
    own (`incidencias_bench_pages_uno`, made for the run and dropped after it): migrated, then
    the departments, the people, the ticket, its entries and their attachments copied from the
    big one. Django's connection is pointed at it: call this last."""
    from django.core.management import call_command
    from django.db import connections

    uno = f"{DB_NAME}_uno"
    recreate_database(server_url, uno)
    conexion = connections["default"]
    conexion.close()
    conexion.settings_dict["NAME"] = uno
    try:
        call_command("migrate", verbosity=0)
        conexion.close()
        with (
            psycopg.connect(f"{server_url}/{DB_NAME}") as origen,
            psycopg.connect(f"{server_url}/{uno}") as destino,
        ):
            destino.execute("SET session_replication_role = replica")
            (ticket_id,) = origen.execute(
                "SELECT id FROM incidencias_ticket WHERE numero = %s", [numero]
            ).fetchone()
            filtros = {
                "sso_departamento": "true",
                "sso_usuario": "true",
                "incidencias_ticket": f"id = {int(ticket_id)}",
                "incidencias_detalleticket": f"ticket_id = {int(ticket_id)}",
                "incidencias_adjunto": "detalle_id IN (SELECT id FROM incidencias_detalleticket"  # noqa: S608 - fixed text
                f" WHERE ticket_id = {int(ticket_id)})",
            }
            for tabla, donde in filtros.items():
                columnas = ", ".join(
                    f'"{c}"'
                    for (c,) in origen.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                        " AND is_generated = 'NEVER' ORDER BY ordinal_position",
                        [tabla],
                    )
                )
                destino.execute(f"DELETE FROM {tabla}")  # noqa: S608 - rows the migrations made
                with (
                    origen.cursor().copy(
                        f"COPY (SELECT {columnas} FROM {tabla} WHERE {donde}) TO STDOUT"  # noqa: S608
                        " (FORMAT BINARY)"
                    ) as salida,
                    destino.cursor().copy(
                        f"COPY {tabla} ({columnas}) FROM STDIN (FORMAT BINARY)"
                    ) as entrada,
                ):
                    for bloque in salida:
                        entrada.write(bloque)
            destino.commit()
            destino.execute("ANALYZE")
        servidor = Servidor(jefe)
        _t, _cpu, estado, _cuerpo = servidor.get(url)
        if estado != 200:
            raise SystemExit(f"ticket alone: {url} answered {estado}")
        tiempos = [servidor.get(url)[0] for _ronda in range(runs + 3)][3:]
        mediana = statistics.median(tiempos)
        print(f"  ticket alone in {uno}\n          page {mediana * 1000:7.2f} ms")
        return mediana
    finally:
        conexion.close()
        conexion.settings_dict["NAME"] = DB_NAME
        drop_database(server_url, uno)


def extras(jefe, departamento: int, runs: int) -> None:
    """No targets: the queue's plan, a deep page and the dashboard, at this size."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidencias.selectors import cola, tablero

    filtros = {"usuario": jefe, "departamento_id": departamento, "estado": list(OPEN_STATES)}
    despues = None
    for _pagina in range(100):
        despues = cola(**filtros, despues=despues).siguiente
    with CaptureQueriesContext(connection) as capturadas:
        cola(**filtros, despues=despues)
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + capturadas[0]["sql"])
        plan = [r[0] for r in cur.fetchall()]
    print("\n  the queue's 101st page (a cursor 5,000 rows in), EXPLAIN ANALYZE:")
    for linea in plan:
        if "SubPlan" in linea or "->" in linea or "Limit" in linea or "time:" in linea:
            print(f"    {linea[:110]}")

    def mediana(funcion) -> float:
        tiempos = []
        for _ in range(runs):
            t0 = time.perf_counter()
            funcion()
            tiempos.append(time.perf_counter() - t0)
        return statistics.median(tiempos) * 1000

    primera = mediana(lambda: cola(**filtros))
    honda = mediana(lambda: cola(**filtros, despues=despues))
    with CaptureQueriesContext(connection) as capturadas:
        tablero(usuario=jefe)
    panel = mediana(lambda: tablero(usuario=jefe))
    print(
        f"  cola(): first page {primera:.2f} ms, 101st page {honda:.2f} ms; "
        f"tablero(): {panel:.2f} ms in {len(capturadas)} statements"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--regenerate", action="store_true", help="drop and generate again")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    args = parser.parse_args()

    server_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    rng = random.Random(args.seed)
    print(
        f"Portal pages: {args.tickets:,} tickets, {args.entries:,} entries, {args.runs} runs "
        f"per page; PostgreSQL {server_url.rpartition('@')[2]}, database {DB_NAME}"
    )
    listo = database_ready(server_url, args.tickets, args.regenerate)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
            environment(Path(tmp), f"{server_url}/{DB_NAME}")
            redis = os.environ.get("REDIS_URL")
            print(
                f"cache: Redis {redis.rpartition('@')[2]} (sessions and permissions read from it)"
                if redis
                else "cache: in-process memory (no Redis: sessions and permissions read from the "
                "database)"
            )
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            # The pages' static files, hashed as in production (the manifest storage).
            call_command("collectstatic", interactive=False, verbosity=0)
            if listo:
                print("data already generated (bench_pages_marca); --regenerate to redo it")
            else:
                seed(args.tickets, args.entries, rng, server_url)
            return medir(args, server_url)
    finally:
        if args.drop:
            drop_database(server_url, DB_NAME)


def medir(args, server_url: str) -> int:
    from django.db import connection

    from sso.models import Departamento, Usuario

    with psycopg.connect(f"{server_url}/{DB_NAME}", autocommit=True) as conn:
        tickets, entradas, largo = conn.execute(
            "SELECT tickets, entradas, ticket_largo FROM bench_pages_marca"
        ).fetchone()
    departamento = Departamento.objects.get(nombre=DEPARTAMENTOS[0][0])
    jefe = Usuario.objects.get(departamento=departamento, jefe=True)

    c = SimpleNamespace(departamento=departamento.pk, numero_largo=largo)
    servidor = Servidor(jefe)
    parametros = {
        "dep": departamento.pk,
        "yo": jefe.pk,
        "q": SEARCH,
        "numero": largo,
        "ahora": datetime.now(UTC),
    }
    base = psycopg.connect(f"{server_url}/{DB_NAME}", autocommit=True)
    casos = {"queue": base_cola, "search": base_busqueda, "ticket": base_ticket}
    print(f"data: {tickets:,} tickets, {entradas:,} entries; the long ticket is #{largo}")

    resultados = {}
    for nombre, baseline in casos.items():
        url = PAGINAS[nombre](c)
        _t, _cpu, estado, cuerpo = servidor.get(url)
        if estado != 200:
            raise SystemExit(f"{nombre}: {url} answered {estado}")
        filas = len(baseline(base, parametros))
        n_consultas = consultas_de(servidor, url)
        connection.queries_log.clear()
        pagina, cpu, sql = [], [], []
        for _ronda in range(args.runs + 3):  # the first three warm up, not counted
            t0 = time.perf_counter()
            baseline(base, parametros)
            sql.append(time.perf_counter() - t0)
            pared, proceso, _estado, _cuerpo = servidor.get(url)
            pagina.append(pared)
            cpu.append(proceso)
        pagina, cpu, sql = pagina[3:], cpu[3:], sql[3:]
        resultados[nombre] = (statistics.median(pagina), statistics.median(sql))
        print(
            f"  {nombre:7} {url}\n"
            f"          page {resultados[nombre][0] * 1000:7.2f} ms "
            f"(of it {statistics.median(cpu) * 1000:.1f} ms CPU of this process; "
            f"{n_consultas} statements, {len(cuerpo):,} bytes)   "
            f"baseline {resultados[nombre][1] * 1000:7.2f} ms ({filas} rows)"
        )
    base.close()
    # The floor: the lightest staff page (layout, navigation, a three-field form, no ticket
    # data), through the same stack: what any page costs before its own work.
    piso = []
    for _ronda in range(args.runs + 3):
        pared, _cpu, estado, _cuerpo = servidor.get(PISO)
        if estado != 200:
            raise SystemExit(f"floor: {PISO} answered {estado}")
        piso.append(pared)
    piso = statistics.median(piso[3:])
    print(
        f"  floor   {PISO}\n          page {piso * 1000:7.2f} ms "
        f"({consultas_de(servidor, PISO)} statements)"
    )
    extras(jefe, departamento.pk, args.runs)
    solo = ticket_a_solas(server_url, largo, jefe, PAGINAS["ticket"](c), args.runs)

    print(f"\nMedians over {args.runs} runs (server time in-process; baseline: plain psycopg):")
    for nombre, (pagina, sql) in resultados.items():
        ratio = pagina / sql
        print(
            f"  {nombre:7} page {pagina * 1000:7.2f} ms  baseline {sql * 1000:7.2f} ms  "
            f"{ratio:5.2f}x (target <= {TARGET_RATIO:.0f}x): "
            f"{'PASS' if ratio <= TARGET_RATIO else 'FAIL'}"
        )
    print(
        f"\n  Without the floor ({piso * 1000:.2f} ms: session, user, middleware, layout), what"
        " each page's own work costs against its baseline:"
    )
    for nombre, (pagina, sql) in resultados.items():
        print(
            f"  {nombre:7} {(pagina - piso) * 1000:7.2f} ms  baseline {sql * 1000:7.2f} ms  "
            f"{(pagina - piso) / sql:5.2f}x"
        )
    print(
        f"\n  The ticket with a million others around it: {resultados['ticket'][0] * 1000:.2f} ms;"
        f" alone in its database: {solo * 1000:.2f} ms "
        f"({resultados['ticket'][0] / solo:.2f}x)"
    )
    cola_ms = resultados["queue"][0] * 1000
    print(
        f"  queue median {cola_ms:.1f} ms (target < {TARGET_QUEUE_MS:.0f} ms): "
        f"{'PASS' if cola_ms < TARGET_QUEUE_MS else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
