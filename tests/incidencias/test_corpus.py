"""The pipeline against Zammad's e-mail parser corpus (real, anonymised mail; AGPL-3.0).

The corpus lives outside the repository, in ZAMMAD_CORPUS (default
../shared/corpus/zammad beside the checkout; see its README.md). Every `.box` in it,
`uncertain/mail116.box`
included, goes through `ingest_raw` and must become a ticket entry whose raw message is the
file's bytes. None of them carries our own Message-ID prefix, so none may end up as failed
mail (a loop).

Where a `.yml` states them, three fields are compared with Zammad's parse. Each `.box` is
compared with its stored `.yml` and, for the four in `newer-4ca1e987/`, with that newer
expectation as well (mail047 has no `.yml`: only ingested). The rules:

* **Sender** (`from_email`): compared case-insensitively (we store lower-case addresses),
  ignoring the quoting of a local part and stray angle brackets, because Zammad prints
  `"a b"@x` as `a b@x` and keeps the `>` of the broken From of mail076. A value without `@`
  is a name, not an address (mail053's `MAILER-DAEMON`): skipped, we store no address then.
* **Subject**: compared after collapsing runs of white space and trimming. We unfold and trim
  subjects; Zammad keeps a trailing space (mail001, mail038, mail039), a leading one (mail077)
  and a CRLF artefact (mail027). We keep 998 characters (mail017's is longer): those are
  compared.
* **Attachment names**, as multisets, only names the mail itself declares. Zammad makes up a
  name, by a fixed fallback chain (`Channel::EmailParser#get_attachments`), for a part that
  declares none; those names say nothing about parsing and are not compared:
  an alternative HTML body kept as `message.html` (`content-alternative` in its preferences;
  we keep that HTML as the entry's sanitised `html`, not as a file); an attached message or
  delivery report, named from its subject or Content-Description (`*.eml`,
  `Delivery report.txt`); a name from its type map, `<document|image|video|delivery-status|
  calendar>[n].<ext>` (lower case), or `file`; a name taken from the Content-ID's local part (this
  also skips mail010's declared `image001.jpg`, which the rule cannot tell apart from
  mail062's made-up one). On our side the same Content-ID rule applies, and the names we
  make up (`adjunto.<ext>`, `delivery-status.txt`, attached messages named from their
  subject) are left out likewise.
  A U+FFFD in Zammad's name is a byte Zammad could not decode: it matches any characters.

Where Zammad's expectation is wrong, the test asserts our value instead (`CORRECCIONES`):
mail018's subject (Zammad left the UTF-7 encoded word undecoded: `+ANw-bermittlungsstatus`)
mail117's sender (an encoded word inside an address, which RFC 2047 forbids, is kept as it is
rather than decoded into another address), and mail064's attachment name (Zammad's is
mojibake: the UTF-8 bytes of the decomposed accents read as Latin-1; the mail declares
`Capture d’écran … à …` in NFD).

`test_it_reports_the_match_rate` prints the rates with every run, and the rates without any
of these rules (plain string equality) beside them.
"""

import base64
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from incidencias.ingest import ingest_raw
from incidencias.mensajes import parse_raw
from incidencias.models import CorreoFallido, DetalleTicket, Ticket

# Beside the checkout, as ../shared/corpus/zammad, unless ZAMMAD_CORPUS says otherwise.
_DEFAULT = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "zammad"
CORPUS = Path(os.environ.get("ZAMMAD_CORPUS", str(_DEFAULT)))
MAX_BYTES = 25 * 1024 * 1024

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"needs the Zammad mail corpus at {CORPUS} (ZAMMAD_CORPUS)"
)


# --- Loading the corpus -----------------------------------------------------------------------


class _RubyLoader(yaml.SafeLoader):
    """Psych's dump: `!ruby/hash:*` is a mapping, `!binary` is base64."""


def _ruby(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_RubyLoader.add_multi_constructor("!ruby/", _ruby)
_RubyLoader.add_constructor(
    "!binary", lambda loader, node: base64.b64decode("".join(loader.construct_scalar(node).split()))
)


def _boxes() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(CORPUS.glob("*.box")) + sorted(CORPUS.glob("*/*.box"))


def _cases() -> list[tuple[Path, Path]]:
    """(box, expectation) pairs: the stored .yml, plus any newer version of it."""
    cases = []
    for box in _boxes():
        stored = box.with_suffix(".yml")
        if stored.exists():
            cases.append((box, stored))
        for newer in sorted(CORPUS.glob(f"newer-*/{box.stem}.yml")):
            cases.append((box, newer))
    return cases


def _name(path: Path) -> str:
    return str(path.relative_to(CORPUS))


def _load(yml: Path) -> dict:
    with yml.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_RubyLoader)  # noqa: S506 (a SafeLoader subclass)


# --- The comparison rules ---------------------------------------------------------------------

_MADE_UP_BY_TYPE = re.compile(
    r"^(file|(document|image|video|delivery-status|calendar)([1-9]\d*)?\.[a-z]+)$"
)
_MADE_UP_BY_US = re.compile(r"^(adjunto(\.\w+)?|delivery-status\.txt)$")

# (file, field) → (the value we must produce, why Zammad's expectation is not used)
CORRECCIONES = {
    ("mail018.box", "subject"): (
        "Benachrichtung zum Übermittlungsstatus (Fehlgeschlagen)",
        "Zammad left the unicode-1-1-utf-7 encoded word undecoded",
    ),
    ("mail117.box", "from_email"): (
        "=?utf-8?q?attacker?q?agent?=@victim.example",
        "RFC 2047 forbids encoded words in an address; Zammad decodes one (with '?' inside, "
        "which encoded text may not hold) into a different address",
    ),
    ("mail064.box", "attachments"): (
        [unicodedata.normalize("NFD", "Capture d’écran 2017-12-27 à 12.22.38.jpg")],
        "Zammad's name is mojibake of the decomposed (NFD) accents",
    ),
}


def _address(value: str) -> str:
    return value.replace('"', "").strip().strip("<>").lower()


def _subject(value: str) -> str:
    return " ".join((value or "").split())


def zammad_made_up(attachment: dict) -> bool:
    """Whether Zammad invented this attachment's name (see the module docstring)."""
    name = attachment.get("filename") or ""
    prefs = attachment.get("preferences") or {}
    mime = (prefs.get("Mime-Type") or "").lower()
    if prefs.get("content-alternative") or mime.startswith("message/"):
        return True
    if _MADE_UP_BY_TYPE.match(name):
        return True
    content_id = (prefs.get("Content-ID") or "").strip("<>")
    return bool(content_id) and name == content_id.partition("@")[0]


def our_declared_names(mensaje) -> list[str]:
    return [
        a.nombre
        for a in mensaje.adjuntos
        if not _MADE_UP_BY_US.match(a.nombre)
        and not a.content_type.startswith("message/")
        and not (a.content_id and a.nombre == a.content_id.partition("@")[0])
    ]


def _same_names(expected: list[str], ours: list[str]) -> bool:
    left = Counter(ours)
    for name in sorted(expected, key=lambda n: "\ufffd" in n):
        if left[name]:
            left[name] -= 1
            continue
        pattern = re.compile(".+?".join(re.escape(p) for p in re.split("\ufffd+", name)) + "$")
        match = next((n for n in left.elements() if pattern.match(n)), None)
        if match is None:
            return False
        left[match] -= 1
    return not +left


@dataclass
class Comparacion:
    field: str
    status: str  # "match", "corrected", "skipped", "differs"
    expected: object = None
    ours: object = None


def compare(box: Path, expectation: dict, mensaje) -> list[Comparacion]:
    out = []
    fichero = box.name

    zammad_from = expectation.get("from_email")
    if zammad_from is None:
        out.append(Comparacion("from_email", "skipped"))
    elif "@" not in zammad_from:
        out.append(Comparacion("from_email", "skipped", zammad_from, mensaje.de_email))
    elif (fichero, "from_email") in CORRECCIONES:
        expected = CORRECCIONES[fichero, "from_email"][0]
        same = mensaje.de_email == expected
        status = "corrected" if same else "differs"
        out.append(Comparacion("from_email", status, expected, mensaje.de_email))
    else:
        same = _address(zammad_from) == _address(mensaje.de_email)
        out.append(
            Comparacion("from_email", "match" if same else "differs", zammad_from, mensaje.de_email)
        )

    if "subject" not in expectation:
        out.append(Comparacion("subject", "skipped"))
    elif (fichero, "subject") in CORRECCIONES:
        expected = CORRECCIONES[fichero, "subject"][0]
        same = _subject(mensaje.asunto) == expected
        out.append(Comparacion("subject", "corrected" if same else "differs", expected, ""))
    else:
        expected, ours = _subject(expectation.get("subject")), _subject(mensaje.asunto)
        # We keep 998 characters (the column; RFC 5322's line limit): compare what we keep.
        same = expected.startswith(ours) if len(mensaje.asunto) == 998 else expected == ours
        out.append(Comparacion("subject", "match" if same else "differs", expected, mensaje.asunto))

    ours = our_declared_names(mensaje)
    if (fichero, "attachments") in CORRECCIONES:
        expected = CORRECCIONES[fichero, "attachments"][0]
        status = "corrected" if Counter(expected) == Counter(ours) else "differs"
        out.append(Comparacion("attachments", status, expected, ours))
    else:
        attachments = expectation.get("attachments") or []
        expected = [a.get("filename") or "" for a in attachments if not zammad_made_up(a)]
        if not expected and not ours:
            status = "match" if attachments else "skipped"
        else:
            status = "match" if _same_names(expected, ours) else "differs"
        out.append(Comparacion("attachments", status, expected, ours))
    return out


def _parse(box: Path):
    return parse_raw(box.read_bytes(), max_bytes=MAX_BYTES, own_domain="portal.example.com")


# --- Tests ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MESSAGE_ID_DOMAIN = "portal.example.com"


def test_it_finds_the_corpus():
    boxes = _boxes()
    assert len(boxes) >= 115
    assert CORPUS / "uncertain" / "mail116.box" in boxes
    assert any("newer-" in str(yml) for _, yml in _cases())


@pytest.mark.parametrize("box", _boxes(), ids=_name)
def test_it_ingests_every_mail_as_a_ticket_entry(db, box):
    raw = box.read_bytes()

    resultado = ingest_raw(raw, fuente="corpus")

    assert resultado.fallido is None, resultado.fallido and resultado.fallido.error
    assert resultado.creado
    detalle = DetalleTicket.objects.get(pk=resultado.detalle.pk)
    assert detalle.ticket_id == resultado.ticket.pk
    assert detalle.tipo == DetalleTicket.Tipo.ENTRANTE
    with detalle.crudo.open("rb") as handle:
        assert handle.read() == raw
    assert detalle.adjuntos.count() == len(_parse(box).adjuntos)
    assert not CorreoFallido.objects.exists()


@pytest.mark.parametrize(
    ("box", "yml"), _cases(), ids=[f"{_name(y)}" for _, y in _cases()] if _cases() else None
)
def test_it_parses_sender_subject_and_attachment_names_as_zammad(box, yml):
    comparaciones = compare(box, _load(yml), _parse(box))

    differs = [c for c in comparaciones if c.status == "differs"]
    assert not differs, [(c.field, c.expected, c.ours) for c in differs]


def test_it_reports_the_match_rate(capsys):
    totals: dict[str, Counter] = {}
    strict: dict[str, Counter] = {}
    nombres = 0
    for box, yml in _cases():
        expectation, mensaje = _load(yml), _parse(box)
        for c in compare(box, expectation, mensaje):
            totals.setdefault(c.field, Counter())[c.status] += 1
            if c.field == "attachments" and c.status == "match":
                nombres += len(c.expected)
        # Without any of the rules: plain equality with Zammad's values.
        strict.setdefault("from_email", Counter())[
            (expectation.get("from_email") or "") == mensaje.de_email
        ] += 1
        strict.setdefault("subject", Counter())[
            (expectation.get("subject") or "") == mensaje.asunto
        ] += 1

    lines = ["", f"Zammad corpus, {len(_cases())} expectations:"]
    for field, counts in totals.items():
        compared = counts["match"] + counts["differs"]
        lines.append(
            f"  {field:12} {counts['match']}/{compared} match"
            f" ({100 * counts['match'] / max(compared, 1):.1f}%),"
            f" {counts['corrected']} where Zammad is wrong and we give the right value,"
            f" {counts['skipped']} not comparable"
        )
    lines.append(f"  attachments: {nombres} declared names compared in the matching mails")
    for field, counts in strict.items():
        lines.append(
            f"  {field:12} exact string equality, no rules: {counts[True]}/{sum(counts.values())}"
        )
    with capsys.disabled():
        print("\n".join(lines))
    for field, counts in totals.items():
        assert counts["differs"] == 0, field


def test_it_threads_and_deduplicates_the_whole_corpus_in_one_mailbox(db):
    """All of it through one source, in order: each mail is a new entry or, when it repeats
    the Message-ID of an earlier one (the corpus has variants of one mail), a duplicate that
    stores nothing."""
    vistos: dict[str, int] = {}
    for box in _boxes():
        raw = box.read_bytes()
        clave = _parse(box).clave_dedup()

        resultado = ingest_raw(raw, fuente="corpus")

        assert resultado.detalle is not None, box.name
        if clave in vistos:
            assert resultado.duplicado
            assert resultado.detalle.pk == vistos[clave]
        else:
            assert not resultado.duplicado
            vistos[clave] = resultado.detalle.pk
    assert DetalleTicket.objects.count() == len(vistos)
    assert Ticket.objects.count() <= len(vistos)
    assert not CorreoFallido.objects.exists()


def test_it_links_a_bounce_of_our_notification_to_its_ticket(db):
    """mail033-…-notification returns a notification whose Message-ID we stored as an
    outbound reply: the bounce lands on that ticket and marks the failed recipient."""
    box = CORPUS / "mail033-undelivered-mail-returned-to-sender-notification.box"
    mensaje = _parse(box)
    assert mensaje.automatico == "rebote"
    assert mensaje.rebotados == ["not_existing@znuny.com"]
    ticket = Ticket.objects.create(numero=10010, asunto="test")
    DetalleTicket.objects.create(
        ticket=ticket, tipo=DetalleTicket.Tipo.RESPUESTA, message_id=mensaje.originales[0]
    )

    resultado = ingest_raw(box.read_bytes(), fuente="corpus")

    assert resultado.ticket == ticket
    assert not resultado.creado
    assert resultado.detalle.automatico == DetalleTicket.Automatico.REBOTE
    ticket.refresh_from_db()
    assert ticket.correos_rebotados == ["not_existing@znuny.com"]
    assert ticket.estado == Ticket.Estado.NUEVO
