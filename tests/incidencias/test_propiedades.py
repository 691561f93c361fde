"""Properties of `ingest_raw` for any input: it never raises, and never loses a message.

Whatever bytes arrive, they either become a ticket entry (found again by their dedup key, its
raw file equal to the bytes) or a failed-mail row holding the bytes. Stronger, and what a
poller relies on: only our own notifications (a loop) end as failed mail; content alone never
makes the pipeline fail. And ingesting the same bytes again stores nothing new.

Two sources of input: any bytes, and near-valid mail built from random headers, boundaries,
charsets and transfer encodings (with some of our own Message-IDs among them). Each example
ingests from a source of its own, so examples never deduplicate against each other; they all
share the test's transaction (pytest-django's `db` is function-scoped), which is fine.
"""

import itertools
import os
import string

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from incidencias.ingest import ingest_raw
from incidencias.mensajes import generar_message_id, parse_raw
from incidencias.models import CorreoFallido, DetalleTicket

DOMINIO = "portal.example.com"
_fuentes = itertools.count()

PROPIEDAD = settings(
    # PROPIEDADES_EJEMPLOS=5000 for a longer hunt; the suite stays fast with 150.
    max_examples=int(os.environ.get("PROPIEDADES_EJEMPLOS", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _ajustes(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MESSAGE_ID_DOMAIN = DOMINIO
    settings.INGEST_MAX_BYTES = 4096  # small, so the oversize path is exercised too


# --- Near-valid mail ----------------------------------------------------------------------------

CHARSETS = [
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "gb2312",
    "shift_jis",
    "iso-2022-jp",
    "koi8-r",
    "utf-16",
    "utf-7",
    "unicode-1-1-utf-7",
    "ks_c_5601-1987",
    "x-unknown",
    "x-unknown-foo",
    "base64",
    "rot13",
    "",
    '"utf-8',
]
CODECS = ["utf-8", "latin-1", "cp1252", "gb18030", "cp932", "utf-16", "utf-7", "koi8-r"]
NOMBRES = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Sender",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-ID",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "X-Loop",
    "X-Autoreply",
    "MIME-Version",
]
CTES = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "utf-8", ""]
TIPOS = [
    "text/plain",
    "text/html",
    "image/png",
    "application/pdf",
    "message/rfc822",
    "message/delivery-status",
    "text/rfc822-headers",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/report; report-type=delivery-status",
    "application/octet-stream",
    "",
]

texto = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.sampled_from(
    [
        "=?utf-8?B?w6HDqcOtw7PDug==?=",
        "=?iso-8859-1?Q?Caf=E9?= =?utf-8?Q?_y_m=C3=A1s?=",
        "=?unicode-1-1-utf-7?Q?+ANw-ber?=",
        "=?x-bogus?B?!!!?=",
        "=?utf-8?Q?=00=FF?=",
        "Ana <ana@example.org>, =?utf-8?Q?L=C3=BAis=2C_J?= <luis@example.org>",
        "<>",
        '"a b"@example.org',
        "undisclosed-recipients:;",
        "Mon, 06 Jan 2025 10:00:00 -0600",
        "32 Foo 99999 99:99:99 +9999",
        "attachment; filename*=UTF-8''%C3%A1rbol.pdf",
        'inline; filename="../../etc/passwd"',
        "[Ticket #1] Re: hola",
    ]
)


@st.composite
def valor_cabecera(draw) -> bytes:
    valor = draw(texto)
    codec = draw(st.sampled_from(CODECS))
    return valor.encode(codec, errors="replace")


@st.composite
def cabeceras(draw, message_id: bool) -> bytes:
    lineas = []
    for _ in range(draw(st.integers(0, 8))):
        nombre = draw(st.sampled_from(NOMBRES) | st.text(string.ascii_letters + "-", max_size=12))
        lineas.append(nombre.encode() + b": " + draw(valor_cabecera()))
        if draw(st.booleans()) and draw(st.booleans()):
            lineas.append(b"\t" + draw(valor_cabecera()))  # a folded continuation
    if message_id:
        propio = draw(st.booleans()) and draw(st.booleans())
        ident = (
            generar_message_id(DOMINIO)
            if propio
            else draw(st.from_regex(r"[a-z0-9.]{1,20}@[a-z]{1,8}\.example", fullmatch=True))
        )
        lineas.append(f"Message-ID: <{ident}>".encode())
    if draw(st.booleans()):
        lineas.insert(draw(st.integers(0, len(lineas))), b"linea sin nombre ni sangria")
    return b"\n".join(lineas)


@st.composite
def parte(draw, profundidad: int) -> bytes:
    tipo = draw(st.sampled_from(TIPOS))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(CTES))
    lineas = [f'Content-Type: {tipo}; charset="{charset}"'.encode()]
    if cte:
        lineas.append(f"Content-Transfer-Encoding: {cte}".encode())
    if draw(st.booleans()):
        lineas.append(b"Content-Disposition: " + draw(valor_cabecera()))
    if tipo.startswith("multipart") and profundidad < 3:
        frontera = draw(st.text(string.ascii_letters + "=_-'()+,./:?", min_size=1, max_size=20))
        lineas[0] = f'Content-Type: {tipo}; boundary="{frontera}"'.encode()
        hijos = draw(st.lists(parte(profundidad + 1), max_size=3))
        cuerpo = b"".join(b"--" + frontera.encode() + b"\n" + h + b"\n" for h in hijos)
        if draw(st.booleans()):
            cuerpo += b"--" + frontera.encode() + b"--\n"  # sometimes never closed
    else:
        cuerpo = draw(st.binary(max_size=300) | valor_cabecera())
        if draw(st.integers(0, 9)) == 0:
            cuerpo *= 40  # now and then beyond INGEST_MAX_BYTES
    return b"\n".join(lineas) + b"\n\n" + cuerpo


@st.composite
def correo_casi_valido(draw) -> bytes:
    raw = draw(cabeceras(message_id=draw(st.booleans()))) + b"\n" + draw(parte(0))
    if draw(st.booleans()):
        raw = raw.replace(b"\n", b"\r\n")
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]  # cut anywhere
    return raw


# --- The property -------------------------------------------------------------------------------


def _crudo(campo) -> bytes:
    with campo.open("rb") as handle:
        return handle.read()


def ni_se_pierde_ni_falla(raw: bytes) -> None:
    fuente = f"prop:{next(_fuentes)}"
    clave = parse_raw(raw, max_bytes=4096, own_domain=DOMINIO).clave_dedup()

    resultado = ingest_raw(raw, fuente=fuente)

    event("bucle" if resultado.fallido else "entrada")
    if resultado.detalle is not None:
        event(f"adjuntos: {min(resultado.detalle.adjuntos.count(), 2)}")
        event(f"con texto: {bool(resultado.detalle.texto)}")
        assert resultado.fallido is None
        detalle = DetalleTicket.objects.get(fuente=fuente, clave_dedup=clave)
        assert detalle == resultado.detalle
        assert _crudo(detalle.crudo) == raw
    else:
        fallido = resultado.fallido
        assert fallido is not None
        assert _crudo(CorreoFallido.objects.get(pk=fallido.pk).crudo) == raw
        # Content never breaks the pipeline: only a loop ends as failed mail.
        assert fallido.motivo == CorreoFallido.Motivo.BUCLE, fallido.error

    entradas, fallidos = DetalleTicket.objects.count(), CorreoFallido.objects.count()
    otra_vez = ingest_raw(raw, fuente=fuente)
    assert (otra_vez.detalle, otra_vez.fallido) == (resultado.detalle, resultado.fallido)
    assert (DetalleTicket.objects.count(), CorreoFallido.objects.count()) == (entradas, fallidos)


@PROPIEDAD
@given(raw=st.binary(max_size=3000))
def test_it_never_loses_or_fails_on_any_bytes(db, raw):
    ni_se_pierde_ni_falla(raw)


@PROPIEDAD
@given(raw=correo_casi_valido())
def test_it_never_loses_or_fails_on_near_valid_mail(db, raw):
    ni_se_pierde_ni_falla(raw)
