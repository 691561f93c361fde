"""Big mail (`incidencias.mensajes`, over GRANDE): the long body runs are set aside before the
parse and decoded from the raw bytes, with the same result as parsing the whole message.

Memory itself is measured only by bench/ingest.py; here the tests check that the parser never
sees the big bodies, and that what comes out is what the whole parse gives.
"""

import base64
import dataclasses
import hashlib
import os
import uuid
from pathlib import Path

import pytest

from incidencias import mensajes
from incidencias.ingest import ingest_raw
from incidencias.mensajes import parse_raw
from incidencias.models import Adjunto, CorreoFallido, DetalleTicket

MAX = 25 * 1024 * 1024
_DEFAULT = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "zammad"
CORPUS = Path(os.environ.get("ZAMMAD_CORPUS", str(_DEFAULT)))


@pytest.fixture(autouse=True)
def _ajustes(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INGEST_MAX_BYTES = MAX


@pytest.fixture
def parseados(monkeypatch):
    """The sizes of what the standard library's parser is handed."""
    tamanos = []
    leer = mensajes._leer

    def espia(raw):
        tamanos.append(len(raw))
        return leer(raw)

    monkeypatch.setattr(mensajes, "_leer", espia)
    return tamanos


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def correo_grande(adjunto: bytes, *, boundary="frontera-1", cierre=True, extra=b"") -> bytes:
    partes = [
        b"From: Ana Cliente <ana@example.org>",
        b"To: soporte@example.com",
        b"Subject: =?utf-8?q?Respaldo_de_facturaci=C3=B3n?=",
        f"Message-ID: <{uuid.uuid4().hex}@cliente.example.org>".encode(),
        b"Date: Tue, 04 Mar 2025 09:00:00 +0000",
        b"MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"'.encode(),
        b"",
        b"Preamble.",
        b"--frontera-1",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        b"Adjunto el respaldo de facturaci=C3=B3n.",
        b"--frontera-1",
        b"Content-Type: application/zip; name*=utf-8''respaldo%20a%C3%B1o.zip",
        b"Content-Disposition: attachment; filename*=utf-8''respaldo%20a%C3%B1o.zip",
        b"Content-Transfer-Encoding: base64",
        b"",
        _b64(adjunto).rstrip(b"\r\n"),
        extra,
        b"--frontera-1",
        b"Content-Type: image/png",
        b"Content-ID: <logo@cliente>",
        b"Content-Transfer-Encoding: base64",
        b"",
        _b64(b"\x89PNG\r\n\x1a\n" + os.urandom(200_000)).rstrip(b"\r\n"),
    ]
    if cierre:
        partes += [b"--frontera-1--", b"Epilogue."]
    return b"\r\n".join(p for p in partes if p is not None) + b"\r\n"


def _todo(raw: bytes, monkeypatch, **kwargs):
    """What the whole parse (no runs set aside) gives."""
    with monkeypatch.context() as m:
        m.setattr(mensajes, "GRANDE", 10**12)
        return _resumen(parse_raw(raw, max_bytes=MAX, **kwargs))


def _resumen(mensaje) -> dict:
    datos = dataclasses.asdict(mensaje)
    datos["adjuntos"] = [
        (a.nombre, a.content_type, a.content_id, a.en_linea, hashlib.sha256(a.contenido).digest())
        for a in mensaje.adjuntos
    ]
    datos.pop("crudo")
    return datos


# --- The streaming path ---------------------------------------------------------------------


@pytest.mark.django_db
def test_it_stores_a_30_mb_attachment_intact_without_parsing_it(parseados, settings):
    settings.INGEST_MAX_BYTES = 64 * 1024 * 1024  # the whole attachment fits
    adjunto = b"PK\x03\x04" + os.urandom(30 * 1024 * 1024)
    raw = correo_grande(adjunto)

    resultado = ingest_raw(raw)

    assert resultado.fallido is None and resultado.creado
    assert max(parseados) < 1024 * 1024  # the parser never saw the attachment's body
    detalle = resultado.detalle
    assert detalle.texto == "Adjunto el respaldo de facturación."
    assert detalle.nota == ""
    zip_, png = Adjunto.objects.filter(detalle=detalle).order_by("id")
    assert (zip_.nombre, zip_.content_type, zip_.tamano) == (
        "respaldo año.zip",
        "application/zip",
        len(adjunto),
    )
    assert zip_.sha256 == hashlib.sha256(adjunto).hexdigest()
    with zip_.archivo.open("rb") as archivo:
        assert hashlib.sha256(archivo.read()).hexdigest() == zip_.sha256
    assert (png.content_id, png.en_linea) == ("logo@cliente", True)
    with detalle.crudo.open("rb") as archivo:
        assert archivo.read() == raw


def test_it_gives_what_the_whole_parse_gives(parseados, monkeypatch):
    raw = correo_grande(os.urandom(3 * 1024 * 1024))

    rapido = _resumen(parse_raw(raw, max_bytes=MAX))

    assert max(parseados) < 64 * 1024
    assert rapido == _todo(raw, monkeypatch)
    assert [a[:3] for a in rapido["adjuntos"]] == [
        ("respaldo año.zip", "application/zip", ""),
        ("adjunto.png", "image/png", "logo@cliente"),
    ]


def test_it_leaves_out_what_does_not_fit_as_the_whole_parse_does(monkeypatch):
    raw = correo_grande(os.urandom(3 * 1024 * 1024))

    mensaje = parse_raw(raw, max_bytes=2 * 1024 * 1024)

    assert [a.nombre for a in mensaje.adjuntos] == ["adjunto.png"]
    assert mensaje.notas[-1].startswith("Adjunto omitido por tamaño: respaldo año.zip (")
    with monkeypatch.context() as m:
        m.setattr(mensajes, "GRANDE", 10**12)
        assert _resumen(parse_raw(raw, max_bytes=2 * 1024 * 1024)) == _resumen(mensaje)


def test_it_attaches_a_big_forwarded_message_as_the_whole_parse_does(monkeypatch, parseados):
    interno = correo_grande(os.urandom(2 * 1024 * 1024))
    raw = b"\r\n".join(
        [
            b"From: Bruno <bruno@example.org>",
            b"To: soporte@example.com",
            b"Subject: Fwd: respaldo",
            b"Message-ID: <fwd.1@example.org>",
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="externa"',
            b"",
            b"--externa",
            b"Content-Type: text/plain",
            b"",
            b"Reenviado.",
            b"--externa",
            b"Content-Type: message/rfc822",
            b"",
            interno.rstrip(b"\r\n"),
            b"--externa--",
            b"",
        ]
    )

    rapido = parse_raw(raw, max_bytes=MAX)

    assert max(parseados) < 64 * 1024
    assert _resumen(rapido) == _todo(raw, monkeypatch)
    (eml,) = rapido.adjuntos
    assert eml.nombre == "Respaldo de facturación.eml"
    assert len(eml.contenido) > 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("caso", "kwargs"),
    [
        ("boundary that never occurs", {"boundary": "otra-frontera"}),
        ("no close boundary", {"cierre": False}),
        ("empty boundary", {"boundary": ""}),
        ("a stray boundary-like line", {"extra": b"--frontera-1-no\r\n--frontera-1"}),
        ("a header-like line in base64", {"extra": b"X-Roto: si\r\nQUJD"}),
        ("a lone CR", {"extra": b"QUJD\rQUJD"}),
    ],
)
@pytest.mark.django_db
def test_malformed_mime_in_a_big_message_never_raises_nor_loses_it(monkeypatch, caso, kwargs):
    raw = correo_grande(os.urandom(2 * 1024 * 1024), **kwargs)

    assert _resumen(parse_raw(raw, max_bytes=MAX)) == _todo(raw, monkeypatch), caso

    resultado = ingest_raw(raw)
    kept = resultado.detalle.crudo if resultado.detalle else resultado.fallido.crudo
    with kept.open("rb") as archivo:
        assert archivo.read() == raw


def test_a_big_single_part_message_is_decoded_from_the_raw_bytes(monkeypatch, parseados):
    datos = os.urandom(2 * 1024 * 1024)
    raw = (
        b"From: ana@example.org\r\nSubject: solo\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/pdf; name=informe.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(datos)
    )

    mensaje = parse_raw(raw, max_bytes=MAX)

    assert max(parseados) < 64 * 1024
    assert [(a.nombre, a.contenido == datos) for a in mensaje.adjuntos] == [("informe.pdf", True)]
    assert _resumen(mensaje) == _todo(raw, monkeypatch)


@pytest.mark.parametrize("cola", [b"QUJ", b"QU JD", b"QUJD=QUJD", b"Q"])
def test_broken_base64_in_a_big_part_decodes_as_the_whole_parse_does(monkeypatch, cola):
    raw = (
        b"From: ana@example.org\r\nSubject: roto\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(os.urandom(1536 * 1024)) + cola
    )

    assert _resumen(parse_raw(raw, max_bytes=MAX)) == _todo(raw, monkeypatch)


def test_a_big_quoted_printable_text_is_read_as_the_whole_parse_does(monkeypatch, parseados):
    linea = b"Linea de registro n=C3=BAmero 1234 sin dos puntos ni guion al inicio=20\r\n"
    raw = (
        b"From: ana@example.org\r\nSubject: registro\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + linea * 30_000
    )

    mensaje = parse_raw(raw, max_bytes=MAX)

    assert max(parseados) < 64 * 1024
    assert mensaje.texto.startswith("Linea de registro número 1234")
    assert _resumen(mensaje) == _todo(raw, monkeypatch)


# --- The same result as the whole parse on real mail ----------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"needs the Zammad mail corpus at {CORPUS}")
def test_corpus_mail_parses_the_same_with_every_run_set_aside(monkeypatch):
    """Every run of plain body lines, however short, set aside: the result of each corpus mail
    (names, Content-IDs, contents, text, HTML, notes, headers) is that of the whole parse."""
    boxes = sorted(CORPUS.glob("*.box")) + sorted(CORPUS.glob("*/*.box"))
    assert len(boxes) > 100
    decodificados = []
    tramo = mensajes._tramo

    def espia(part):
        vista = tramo(part)
        decodificados.append(vista is not None)
        return vista

    for box in boxes:
        raw = box.read_bytes()
        entero = _todo(raw, monkeypatch)
        with monkeypatch.context() as m:
            m.setattr(mensajes, "GRANDE", 0)
            m.setattr(mensajes, "_TRAMO_MINIMO", 1)
            m.setattr(mensajes, "_tramo", espia)
            assert _resumen(parse_raw(raw, max_bytes=MAX)) == entero, box.name
    assert sum(decodificados) > 10  # bodies were decoded from the raw bytes


# --- A message cut short (an IMAP message over IMAP_MAX_BYTES) -------------------------------


def test_a_cut_message_keeps_what_was_read_and_says_what_was_left_out(settings):
    settings.IMAP_MAX_BYTES = 1024 * 1024
    raw = correo_grande(os.urandom(3 * 1024 * 1024))
    inicio = raw[: 1024 * 1024]

    mensaje = parse_raw(inicio, max_bytes=MAX, tamano_completo=len(raw))

    assert mensaje.texto == "Adjunto el respaldo de facturación."
    assert mensaje.adjuntos == []
    assert mensaje.crudo == inicio
    assert mensaje.notas[0] == (
        f"El mensaje mide {len(raw)} bytes, más que los 1048576 que puede medir un mensaje de "
        "un buzón (IMAP_MAX_BYTES): solo se leyeron y conservaron sus primeros 1048576 bytes; "
        "el resto, con los adjuntos que contenga, se omitió."
    )
    assert "Adjunto omitido, cortado donde terminó la descarga: respaldo año.zip." in (
        mensaje.notas
    )


@pytest.mark.django_db
def test_a_cut_message_is_a_ticket_entry_and_a_duplicate_the_second_time(settings):
    raw = correo_grande(os.urandom(3 * 1024 * 1024))
    inicio = raw[: 1024 * 1024]

    primero = ingest_raw(inicio, tamano_completo=len(raw))
    segundo = ingest_raw(inicio, tamano_completo=len(raw))

    assert primero.creado and segundo.duplicado
    assert segundo.detalle.pk == primero.detalle.pk
    assert "IMAP_MAX_BYTES" in primero.detalle.nota
    assert DetalleTicket.objects.count() == 1 and not CorreoFallido.objects.exists()
