"""A deterministic corpus of Spanish support mail for the ingestion benchmark.

`generate(folder, count, seed)` writes `00001.eml` … as the bytes an IMAP server would hand the
poller (RFC 5322, CRLF line ends) plus `manifest.json`, which says which mail answers which. The
same (count, seed) always gives the same bytes, so a run can be repeated and compared; a folder
whose manifest already matches is reused as it is.

Mix: 70% new threads, 30% replies (`In-Reply-To` and `References` to an earlier mail of the
corpus, `Re: <subject>`, the parent quoted below the answer), 20% with a 50 KB binary attachment
(base64), 35% multipart/alternative with an HTML part, 15% with ISO-8859-1 subjects (encoded
words, `=?ISO-8859-1?Q?…?=`) and bodies; the rest UTF-8 in quoted-printable, base64 or 8bit.
Each text part holds 2–20 KB. Addresses are example.com / example.org only.
"""

import base64
import email.utils
import html
import json
import quopri
import random
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from pathlib import Path

GENERATOR_VERSION = 1
SUPPORT = ("Soporte Técnico", "soporte@example.com")
ATTACHMENT_BYTES = 50 * 1024


REPLY_SHARE = 0.30
ATTACHMENT_SHARE = 0.20
HTML_SHARE = 0.35
ISO_SHARE = 0.15

FIRST_NAMES = [
    "María", "José", "Andrés", "Sofía", "Ramón", "Lucía", "Begoña", "Íñigo", "Mónica", "Jesús",
    "Valeria", "Sebastián", "Inés", "Tomás", "Ángela", "Joaquín", "Verónica", "Martín", "Rocío",
    "Adrián", "Natalia", "Germán", "Óscar", "Noelia", "Raúl", "Beatriz", "Hernán", "Marisol",
]  # fmt: skip
LAST_NAMES = [
    "Pérez", "Rodríguez", "Jiménez", "Muñoz", "Solís", "Chaves", "Vargas", "Araya", "Quesada",
    "Núñez", "Fernández", "Gómez", "Castro", "Zúñiga", "Alfaro", "Méndez", "Ibáñez", "Sáenz",
    "Mora", "Calderón", "Villalobos", "Arce", "Bermúdez", "Hernández", "Cordero", "Peña",
]  # fmt: skip
DOMAINS = ["example.org", "example.com", "clientes.example.org", "sucursal.example.com"]
ROLES = [
    "Asistente administrativa", "Jefe de contabilidad", "Analista de compras",
    "Coordinadora de ventas", "Encargado de bodega", "Gerente de sucursal",
    "Técnico de campo", "Recepción", "Dirección financiera", "Recursos humanos",
]  # fmt: skip
SYSTEMS = [
    "sistema de facturación", "portal de clientes", "módulo de nómina", "ERP", "correo web",
    "sistema de inventario", "punto de venta", "intranet", "servidor de archivos",
    "aplicación móvil", "sistema de planillas", "CRM",
]  # fmt: skip
PLACES = [
    "San José", "Cartago", "Heredia", "Alajuela", "Limón", "Puntarenas", "Liberia",
    "Pérez Zeledón", "Escazú", "Curridabat",
]  # fmt: skip
DEPARTMENTS = ["Contabilidad", "Logística", "Ventas", "Gerencia", "Tesorería", "Compras"]
SUBJECTS = [
    "No puedo acceder al {system}",
    "Error al generar la factura electrónica n.º {number}",
    "Solicitud de restablecimiento de contraseña",
    "La impresora de la oficina de {place} no imprime",
    "Lentitud en el {system} desde esta mañana",
    "Consulta sobre el estado de la orden {number}",
    "Problema con la conexión VPN en la sucursal de {place}",
    "Actualización pendiente del {system}",
    "Correo rechazado al enviar a proveedores",
    "Urgente: caída del {system}",
    "Solicitud de acceso a la carpeta compartida de {department}",
    "El teléfono IP de la extensión {extension} no tiene tono",
    "Certificado vencido en el {system}",
    "Duplicación de registros en el {system}",
    "Configuración del buzón de {department}",
    "Reporte mensual de {department} con cifras incorrectas",
    "No sincroniza el calendario en el teléfono",
    "Pantalla azul en el equipo de recepción",
    "Alta de usuario nuevo en {department}",
    "Error 500 al guardar cambios en el {system}",
]  # fmt: skip
GREETINGS = [
    "Buenos días:", "Buenas tardes,", "Estimado equipo de soporte:", "Hola, ¿qué tal?",
    "Estimados señores:", "Saludos,", "Buen día, compañeros:",
]  # fmt: skip
SENTENCES = [
    "Desde esta mañana el {system} muestra un mensaje de error cuando intento ingresar.",
    "Ya reinicié el equipo dos veces y el problema continúa igual.",
    "Varios compañeros de {department} reportan la misma situación en la sucursal de {place}.",
    "¿Podrían revisar si hubo algún cambio en la configuración durante el fin de semana?",
    "Adjunto una captura de pantalla con el detalle del error para que la revisen.",
    "El proceso de cierre contable vence el viernes, así que necesitamos una solución pronto.",
    "La última vez que ocurrió algo parecido fue después de la actualización de marzo.",
    "No sé si está relacionado, pero también falló la sincronización del correo.",
    "Intenté con otro navegador y con el modo incógnito, sin ningún resultado.",
    "El mensaje dice que la sesión expiró, aunque acabo de iniciarla hace un minuto.",
    "Necesitamos que el usuario de la nueva compañera quede habilitado antes del lunes.",
    "Les agradezco de antemano la atención y quedo atenta a cualquier consulta.",
    "La impresora muestra el indicador de papel atascado, pero la bandeja está vacía.",
    "¡Es la tercera vez en la semana que sucede lo mismo!",
    "El cliente llamó molesto porque no recibió la factura electrónica de su compra.",
    "En el registro aparece la hora exacta de la falla: a las 8:47 se perdió la conexión.",
    "La conexión a la VPN se cae cada quince o veinte minutos y hay que volver a autenticarse.",
    "Por favor, indíquenme si necesitan acceso remoto a mi equipo para revisarlo.",
    "La extensión {extension} no tiene tono desde que movieron el teléfono de escritorio.",
    "Revisé con el proveedor de internet y según ellos el enlace está funcionando bien.",
    "El reporte de {department} muestra montos duplicados en la columna de impuestos.",
    "Quisiera saber también cuánto tiempo tardaría la migración del buzón compartido.",
    "Mientras tanto estamos registrando las ventas a mano, lo cual atrasa todo el proceso.",
    "Sería ideal programar la actualización fuera del horario de atención al público.",
    "El señor Ibáñez pidió que se le informe cuando quede resuelto, por favor.",
    "La contraseña cumple con los requisitos, pero el sistema la rechaza igualmente.",
    "Noté que el disco del servidor de archivos está casi lleno; tal vez sea la causa.",
    "El año pasado tuvimos una situación similar y la resolvieron cambiando el certificado.",
]  # fmt: skip
CLOSINGS = ["Saludos cordiales,", "Muchas gracias,", "Quedo atento,", "Atentamente,", "Gracias,"]
LOG_LEVELS = ["INFO", "WARN", "ERROR", "ERROR", "DEBUG"]
LOG_MESSAGES = [
    "Tiempo de espera agotado al conectar con 10.20.{a}.{b}:5432",
    "Sesión {n} cerrada por inactividad",
    "No se pudo validar el certificado del servidor: fecha de expiración superada",
    "Reintento {n} de 5 para el envío del comprobante electrónico",
    "Usuario bloqueado tras 3 intentos fallidos de autenticación",
    "Cola de impresión detenida: error de controlador en el puerto USB001",
    "Respuesta inesperada del servicio de facturación (código 503)",
]  # fmt: skip
ATTACHMENTS = [
    ("image/png", "captura_{n}.png", b"\x89PNG\r\n\x1a\n"),
    ("application/pdf", "informe_{n}.pdf", b"%PDF-1.4\n"),
    ("application/pdf", "facturación_{n}.pdf", b"%PDF-1.5\n"),
    ("application/zip", "registros_{n}.zip", b"PK\x03\x04"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "reporte_año_{n}.xlsx",
        b"PK\x03\x04",
    ),
]
MAILERS = [
    "Microsoft Outlook 16.0",
    "Mozilla Thunderbird 128.5.0",
    "Apple Mail (2.3774.600.62)",
    "Roundcube Webmail/1.6.9",
]


@dataclass
class Mail:
    """One generated mail, as the manifest records it."""

    file: str
    message_id: str
    parent: str | None  # Message-ID this mail answers
    root: str  # Message-ID of the first mail of its thread
    attachment: bool
    html: bool
    iso: bool
    bytes: int


@dataclass
class Corpus:
    folder: Path
    seed: int
    mails: list[Mail] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [self.folder / mail.file for mail in self.mails]

    @property
    def replies(self) -> list[Mail]:
        return [mail for mail in self.mails if mail.parent]

    @property
    def total_bytes(self) -> int:
        return sum(mail.bytes for mail in self.mails)


@dataclass
class _Thread:
    subject: str
    iso: bool
    sender: tuple[str, str]
    references: list[str]
    text: str
    date: datetime


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = f"{first[0]}{last}".lower()
    local = local.translate(str.maketrans("áéíóúñü", "aeiounu")).translate(
        str.maketrans("ÁÉÍÓÚÑ", "aeioun")
    )
    return f"{first} {last}", f"{local}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        system=rng.choice(SYSTEMS),
        place=rng.choice(PLACES),
        department=rng.choice(DEPARTMENTS),
        number=rng.randint(10_000, 99_999),
        extension=rng.randint(100, 899),
    )


def _text(rng: random.Random, size: int, name: str) -> str:
    """Spanish prose (and a pasted log) of about `size` characters, lines <= 76."""
    parts = [rng.choice(GREETINGS), ""]
    length = 0
    while length < size:
        if rng.random() < 0.15:
            start = datetime(2025, 3, 3, 8, 0) + timedelta(seconds=rng.randint(0, 40_000))
            lines = []
            for _ in range(rng.randint(5, 25)):
                message = rng.choice(LOG_MESSAGES).format(
                    a=rng.randint(0, 255), b=rng.randint(1, 254), n=rng.randint(1, 9999)
                )
                start += timedelta(seconds=rng.randint(1, 30))
                stamp = start
                lines.append(f"{stamp:%Y-%m-%d %H:%M:%S} {rng.choice(LOG_LEVELS):5} {message}")
            block = "\n".join(lines)  # pasted as is: log lines run past 76 characters
        else:
            sentences = [_fill(rng.choice(SENTENCES), rng) for _ in range(rng.randint(3, 7))]
            block = _wrap(" ".join(sentences))
        parts += [block, ""]
        length += len(block) + 2
    parts += [
        rng.choice(CLOSINGS),
        name,
        rng.choice(ROLES),
        f"Tel. 2{rng.randint(0, 999):03d}-0000",
    ]
    return "\n".join(parts)


def _wrap(text: str, width: int = 76) -> str:
    """Greedy word wrap (textwrap is several times slower and would dominate generation)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)


def _quote(text: str, limit: int) -> str:
    return "\n".join("> " + line if line else ">" for line in text[:limit].splitlines())


def _html(text: str) -> str:
    paragraphs = "\n".join(
        "<p>" + html.escape(block).replace("\n", "<br>\n") + "</p>" for block in text.split("\n\n")
    )
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '</head>\n<body style="font-family: Calibri, sans-serif">\n'
        f"{paragraphs}\n</body></html>"
    )


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _part(content_type: str, text: str, charset: str, encoding: str) -> list[bytes]:
    head = f"Content-Type: {content_type}; charset={charset}".encode()
    data = text.encode(charset)
    if encoding == "quoted-printable":
        body = quopri.encodestring(data)
    elif encoding == "base64":
        body = base64.encodebytes(data)
    else:  # 8bit: lines are already short
        body = data
    return [head, f"Content-Transfer-Encoding: {encoding}".encode(), b"", _crlf(body).rstrip()]


def _header(name: str, value: str, charset: str, prefix: str = "") -> bytes:
    if value.isascii():
        return f"{name}: {prefix}{value}".encode()
    header = Header(prefix, header_name=name) if prefix else Header(header_name=name)
    header.append(value, charset)
    encoded = header.encode(linesep="\r\n")
    if charset == "iso-8859-1":  # as Outlook and Thunderbird spell it
        encoded = encoded.replace("=?iso-8859-1?q?", "=?ISO-8859-1?Q?")
    return f"{name}: {encoded}".encode()


def _address(name: str, value: tuple[str, str], charset: str) -> bytes:
    return f"{name}: {email.utils.formataddr(value, charset=charset)}".encode()


def _attachment(rng: random.Random, index: int) -> tuple[list[bytes], int]:
    content_type, pattern, magic = rng.choice(ATTACHMENTS)
    filename = pattern.format(n=index)
    data = magic + rng.randbytes(ATTACHMENT_BYTES - len(magic))
    if filename.isascii():
        disposition = f'attachment; filename="{filename}"'
        ctype = f'{content_type}; name="{filename}"'
    else:
        quoted = email.utils.encode_rfc2231(filename, "utf-8")
        disposition = f"attachment;\r\n filename*={quoted}"
        ctype = content_type
    lines = [
        f"Content-Type: {ctype}".encode(),
        f"Content-Disposition: {disposition}".encode(),
        b"Content-Transfer-Encoding: base64",
        b"",
        _crlf(base64.encodebytes(data)).rstrip(),
    ]
    return lines, len(data)


def _multipart(subtype: str, boundary: str, parts: list[list[bytes]]) -> list[bytes]:
    lines = [f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"'.encode(), b""]
    if subtype == "mixed":
        lines += [b"This is a multi-part message in MIME format.", b""]
    for part in parts:
        lines += [f"--{boundary}".encode(), *part]
    lines += [f"--{boundary}--".encode(), b""]
    return lines


def _one(rng: random.Random, index: int, parent: _Thread | None, attach: bool, iso: bool, now):
    """(raw bytes, Message-ID, the thread state a reply to this mail continues)."""
    if parent is None:
        sender = _person(rng)
        while True:
            subject = _fill(rng.choice(SUBJECTS), rng)
            if not iso or not subject.isascii():
                break
        chain: list[str] = []
    else:
        iso = parent.iso  # the same client answers in the same charset
        subject = parent.subject
        sender = parent.sender if rng.random() < 0.8 else _person(rng)
        chain = parent.references[-10:]  # ends with the parent's Message-ID
    charset = "iso-8859-1" if iso else "utf-8"
    domain = sender[1].rpartition("@")[2]
    message_id = f"<{now:%Y%m%d%H%M%S}.{index:05d}.{rng.getrandbits(48):012x}@mail.{domain}>"
    size = rng.randint(2048, 20480)
    text = _text(rng, size, sender[0])
    if parent is not None:
        answer = _text(rng, max(size // 2, 1024), sender[0])
        stamp = email.utils.format_datetime(parent.date)
        text = (
            f"{answer}\n\nEl {stamp}, {parent.sender[0]} <{parent.sender[1]}> escribió:\n"
            + _quote(parent.text, size - len(answer))
        )
    with_html = rng.random() < HTML_SHARE
    if iso:
        encoding = "quoted-printable"
    else:
        encoding = rng.choices(["quoted-printable", "base64", "8bit"], [0.65, 0.15, 0.20])[0]

    headers = [
        f"Return-Path: <{sender[1]}>".encode(),
        (
            f"Received: from mail.{domain} (mail.{domain} [192.0.2.{rng.randint(1, 254)}])\r\n"
            f"\tby mx.example.com (Postfix) with ESMTPS id {rng.getrandbits(40):010X}\r\n"
            f"\tfor <soporte@example.com>; {email.utils.format_datetime(now)}"
        ).encode(),
        f"Message-ID: {message_id}".encode(),
        f"Date: {email.utils.format_datetime(now)}".encode(),
        _address("From", sender, charset),
        _address("To", SUPPORT, charset),
    ]
    if rng.random() < 0.15:
        headers.append(_address("Cc", _person(rng), charset))
    headers.append(_header("Subject", subject, charset, prefix="Re: " if parent else ""))
    if chain:
        headers.append(f"In-Reply-To: {chain[-1]}".encode())
        headers.append(b"References: " + "\r\n ".join(chain).encode())
    headers += [
        f"X-Mailer: {rng.choice(MAILERS)}".encode(),
        b"Content-Language: es-CR",
        b"MIME-Version: 1.0",
    ]

    plain = _part("text/plain", text, charset, encoding)
    body = plain
    if with_html:
        html_part = _part("text/html", _html(text), charset, "quoted-printable")
        body = _multipart(
            "alternative", f"----=_Alt_{index:05d}_{rng.getrandbits(32):08X}", [plain, html_part]
        )
    if attach:
        attachment, _ = _attachment(rng, index)
        body = _multipart(
            "mixed", f"----=_Mix_{index:05d}_{rng.getrandbits(32):08X}", [body, attachment]
        )
    raw = b"\r\n".join([*headers, *body]) + b"\r\n"
    thread = _Thread(subject, iso, sender, [*chain, message_id], text, now)
    return raw, message_id, thread


def _plan(count: int, rng: random.Random) -> tuple[set[int], set[int], set[int]]:
    """Exactly 30% replies (never the first mail), 20% attachments, 15% ISO-8859-1 threads."""
    replies = set(rng.sample(range(1, count), round(count * REPLY_SHARE))) if count > 1 else set()
    attachments = set(rng.sample(range(count), round(count * ATTACHMENT_SHARE)))
    iso = set(rng.sample(range(count), round(count * ISO_SHARE)))
    return replies, attachments, iso


def generate(folder: Path, count: int, seed: int) -> Corpus:
    """Write (or reuse) `count` mails in `folder`; return the corpus and who answers whom."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        if (saved.get("version"), saved.get("count"), saved.get("seed")) == (
            GENERATOR_VERSION,
            count,
            seed,
        ) and all((folder / mail["file"]).is_file() for mail in saved["mails"]):
            return Corpus(folder, seed, [Mail(**mail) for mail in saved["mails"]])
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.eml"):
        old.unlink()
    rng = random.Random(seed)
    replies, attachments, iso = _plan(count, rng)
    now = datetime(2025, 3, 3, 7, 30, tzinfo=timezone(timedelta(hours=-6)))
    threads: list[_Thread] = []
    roots: list[str] = []
    corpus = Corpus(folder, seed)
    for index in range(count):
        now += timedelta(seconds=rng.randint(20, 400))
        parent = None
        if index in replies:
            # Mostly recent conversations, now and then an old one.
            window = 50 if rng.random() < 0.8 else 2000
            parent_index = rng.randint(max(0, index - window), index - 1)
            parent = threads[parent_index]
        raw, message_id, thread = _one(
            rng, index + 1, parent, index in attachments, index in iso, now
        )
        root = roots[parent_index] if parent is not None else message_id
        threads.append(thread)
        roots.append(root)
        name = f"{index + 1:05d}.eml"
        (folder / name).write_bytes(raw)
        corpus.mails.append(
            Mail(
                file=name,
                message_id=message_id,
                parent=parent.references[-1] if parent else None,
                root=root,
                attachment=index in attachments,
                html=b"text/html" in raw,
                iso=thread.iso,
                bytes=len(raw),
            )
        )
    manifest.write_text(
        json.dumps(
            {
                "version": GENERATOR_VERSION,
                "count": count,
                "seed": seed,
                "mails": [asdict(mail) for mail in corpus.mails],
            },
            indent=0,
        )
    )
    return corpus


def big_message(path: Path, size: int, seed: int) -> int:
    """One mail of about `size` bytes, nearly all of it a base64 attachment; its real size."""
    rng = random.Random(seed)
    text = _text(rng, 4096, "Marisol Araya")
    overhead = 8 * 1024
    binary = (size - overhead) // 78 * 57  # base64 lines: 57 bytes -> 76 characters + CRLF
    message_id = f"<grande.{rng.getrandbits(64):016x}@mail.example.org>"
    headers = [
        f"Message-ID: {message_id}".encode(),
        b"Date: " + email.utils.format_datetime(datetime(2025, 3, 4, 9, 0, tzinfo=UTC)).encode(),
        _address("From", ("Marisol Araya", "maraya@example.org"), "utf-8"),
        _address("To", SUPPORT, "utf-8"),
        _header("Subject", "Respaldo completo de la base de datos de facturación", "utf-8"),
        b"MIME-Version: 1.0",
    ]
    attachment = [
        b'Content-Type: application/zip; name="respaldo.zip"',
        b'Content-Disposition: attachment; filename="respaldo.zip"',
        b"Content-Transfer-Encoding: base64",
        b"",
        _crlf(base64.encodebytes(b"PK\x03\x04" + rng.randbytes(binary - 4))).rstrip(),
    ]
    body = _multipart(
        "mixed",
        "----=_Grande_0001",
        [_part("text/plain", text, "utf-8", "quoted-printable"), attachment],
    )
    raw = b"\r\n".join([*headers, *body]) + b"\r\n"
    path.write_bytes(raw)
    return len(raw)
