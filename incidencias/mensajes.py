"""Incoming mail, normalised: raw RFC 5322 bytes and the correo/save JSON both become a
`MensajeEntrante`, which is all the pipeline (`incidencias.ingest`) ever reads.

Parsing uses the standard library's `compat32` policy with explicit header decoding: policy
`default` builds header objects eagerly and is several times slower on the same mail, and the
parse is the cost of ingestion. Nothing here raises on bad input: unknown charsets, broken
MIME and undecodable headers degrade to a best-effort text with a note.

A big message (over `GRANDE`) is not handed to the parser whole: the parser keeps every line
of a body as a string of its own, then the joined payload, then its bytes and the decoded
bytes, about seven times the message. Its long runs of plain body lines (a base64
attachment) are set aside at the byte level first, each replaced by one placeholder line, and
a part whose body is one placeholder is decoded straight from the raw bytes. A run never
holds a line the parser could read as a header, a boundary or a blank line, so the parser
sees the same structure as in the whole message and the result is the same.
"""

import base64
import binascii
import email
import functools
import hashlib
import mimetypes
import quopri
import re
import secrets
from contextlib import nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import errors as email_errors
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

import nh3
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

# --- Data -----------------------------------------------------------------------------------


@dataclass
class AdjuntoEntrante:
    nombre: str
    content_type: str
    contenido: bytes
    content_id: str = ""
    en_linea: bool = False


@dataclass
class MensajeEntrante:
    message_id: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    asunto: str = ""
    de_nombre: str = ""
    de_email: str = ""
    para: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    responder_a: list[str] = field(default_factory=list)
    fecha: datetime | None = None
    texto: str = ""
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    adjuntos: list[AdjuntoEntrante] = field(default_factory=list)
    sistema: str = ""
    crudo: bytes | None = None
    notas: list[str] = field(default_factory=list)
    # Machine mail: "" (a person), "autorespuesta", "rebote" or "bucle" (our own mail).
    automatico: str = ""
    rebotados: list[str] = field(default_factory=list)
    # Message-IDs of the message a bounce returns: threading falls back to them.
    originales: list[str] = field(default_factory=list)

    def sanear(self) -> "MensajeEntrante":
        """Drop what no database stores: NUL characters and lone surrogates (UTF-7, escapes).

        PostgreSQL refuses NUL in text and JSON; lone surrogates cannot be encoded at all."""
        for name in ("message_id", "asunto", "de_nombre", "de_email", "texto", "html", "sistema"):
            setattr(self, name, _sano(getattr(self, name)))
        for name in (
            "in_reply_to", "references", "para", "cc", "bcc", "responder_a", "notas",
            "rebotados", "originales",
        ):  # fmt: skip
            setattr(self, name, [_sano(item) for item in getattr(self, name)])
        self.headers = {_sano(k): _sano(v) for k, v in self.headers.items()}
        for adjunto in self.adjuntos:
            adjunto.nombre = _sano(adjunto.nombre)
            adjunto.content_type = _sano(adjunto.content_type)
            adjunto.content_id = _sano(adjunto.content_id)
        return self

    def clave_dedup(self) -> str:
        """Message-ID, or a deterministic hash of the headers and body when it has none."""
        if self.message_id:
            return self.message_id[:255]
        digest = hashlib.sha256()
        for part in (self.de_email, self.asunto, ",".join(self.para), str(self.fecha or "")):
            digest.update(part.encode("utf-8", "replace") + b"\0")
        if self.crudo is not None:
            digest.update(self.crudo)
        else:
            digest.update(self.texto.encode("utf-8", "replace") + b"\0")
            digest.update(self.html.encode("utf-8", "replace"))
            for adjunto in self.adjuntos:
                digest.update(adjunto.nombre.encode() + hashlib.sha256(adjunto.contenido).digest())
        return "sha256:" + digest.hexdigest()


# --- Header helpers -------------------------------------------------------------------------

_MSGID = re.compile(r"<([^<>\s]+)>")


_RAW_8BIT = re.compile("[\udc80-\udcff]")
# The charsets the message being parsed declares: candidates for its raw 8-bit headers.
_charsets_del_mensaje: ContextVar[tuple[str, ...]] = ContextVar("charsets", default=())


# Encoded text never contains "?": `[^?]*` keeps the match linear (no backtracking).
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([qQbB])\?([^?]*)\?=")
_MAX_HEADER = 16 * 1024  # characters of one header value that are decoded
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def _sano(text: str) -> str:
    if not text or _sin_inseguros(text):
        return text
    return _UNSAFE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def _sin_inseguros(text: str) -> bool:
    """`not _UNSAFE.search(text)`, many times faster on a long text: a search for NUL, and an
    encoding that refuses lone surrogates (both in C; the regex tests a character class per
    character)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_text(value) -> str:
    """An RFC 2047 header value as text, whatever its charsets claim."""
    if value is None:
        return ""
    if not isinstance(value, str):  # email.header.Header from compat32
        value = str(value)
    value = value[:_MAX_HEADER]
    if _RAW_8BIT.search(value):
        # Raw 8-bit bytes in a header (RFC 6532, or a careless client): compat32 hands them
        # over as surrogates. UTF-8 when they are, else a charset the message declares.
        raw = value.encode("utf-8", "surrogateescape")
        value = _decode_bytes(raw, None, _charsets_del_mensaje.get())
    value = _unfold(value)  # an encoded word may be folded across lines
    if "=?" not in value:
        return _sin_control(_sano(value))
    parts, pos, pending, pending_charset = [], 0, b"", None
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset = match.group(1).split("*")[0]  # RFC 2231 language suffix
        data = _decode_word(match.group(2), match.group(3))
        if pending and (between.strip() or charset.lower() != pending_charset):
            parts.append(_decode_bytes(pending, pending_charset))
            pending = b""
        if not pending and (between.strip() or not parts):
            parts.append(between)  # whitespace between adjacent encoded words is dropped
        # Adjacent words in one charset are decoded together: mailers split characters.
        pending, pending_charset = pending + data, charset.lower()
        pos = match.end()
    if pending:
        parts.append(_decode_bytes(pending, pending_charset))
    parts.append(value[pos:])
    return _sin_control(_sano("".join(parts).strip()))


def _sin_control(text: str) -> str:
    """No line breaks or other control characters in a header value: a decoded CR LF must
    never become a header of a mail we send."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: " " if m.group() in "\r\n" else "", text)


def _decode_word(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        text = re.sub(r"[^A-Za-z0-9+/]", "", text)
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return text.encode("ascii", "replace")
    return quopri.decodestring(text.encode("utf-8", "surrogateescape"), header=True)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", "").replace("\n", " ").strip()


def _decode_bytes(data: bytes, charset: str | None, candidatos=()) -> str:
    """Bytes as text: the declared charset, else UTF-8 (strict, so it rarely accepts what is
    not), else 8-bit charsets sent under that label, else charsets the message declares
    elsewhere (those that can fail first), else Latin-1, which never fails."""
    codecs = [charset, "utf-8", *_COMPANIONS.get(_charset_alias(charset or ""), ())]
    for candidato in sorted(candidatos, key=_permisivo):
        codecs += [candidato, *_COMPANIONS.get(_charset_alias(candidato), ())]
    for codec in codecs:
        if not codec:
            continue
        try:
            return _sano(data.decode(_charset_alias(codec)))
        except (LookupError, ValueError, TypeError):
            continue
    return _sano(data.decode("latin-1"))


_CHARSET_ALIASES = {
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "latin-1",
    "ks_c_5601-1987": "cp949",
    # Labels of GBK-encoded mail (WHATWG decodes them all as GBK, a subset of GB 18030).
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "iso-gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
}
# 8-bit charsets commonly sent under a 7-bit label (raw Shift_JIS labelled ISO-2022-JP).
_COMPANIONS = {"iso-2022-jp": ("cp932", "euc-jp"), "csiso2022jp": ("cp932", "euc-jp")}


def _charset_alias(charset: str) -> str:
    charset = str(charset).strip().strip('"').strip("'").lower()
    return _CHARSET_ALIASES.get(charset, charset)


@functools.lru_cache(maxsize=256)
def _permisivo(charset: str) -> bool:
    """Whether a charset decodes any bytes (so it cannot tell a wrong guess)."""
    try:
        bytes(range(256)).decode(_charset_alias(charset))
    except (LookupError, ValueError, TypeError):
        return False
    return True


def message_ids(value) -> list[str]:
    """The ids in a Message-ID, In-Reply-To or References header, in order, without <>."""
    text = decode_text(value)
    found = _MSGID.findall(text)
    if not found and text and " " not in text.strip() and "@" in text:
        found = [text.strip().strip("<>")]
    seen, out = set(), []
    for item in found:
        item = _id_acotado(item)
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _id_acotado(message_id: str) -> str:
    """A Message-ID short enough for its index: a long one becomes its start plus a hash,
    the same wherever it appears, so threading by it still works."""
    if len(message_id) <= 255:
        return message_id
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{message_id[:200]}~{digest}"


_ADDR_SPEC = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def addresses(values) -> list[tuple[str, str]]:
    """(name, lower-case address) pairs of address headers.

    The header is split into addresses before its encoded words are decoded, so a decoded
    comma or angle bracket in a display name cannot split it or smuggle in an address."""
    words: list[str] = []

    def hide(match):
        words.append(match.group(0))
        return f"qqencodedword{len(words) - 1}qq"

    def show(text):
        return re.sub(r"qqencodedword(\d+)qq", lambda m: words[int(m.group(1))], text)

    hidden = [
        _ENCODED_WORD.sub(hide, _unfold(str(value)[:_MAX_HEADER])) for value in values if value
    ]
    try:
        parsed = getaddresses(hidden)
    except RecursionError:  # pathological nesting of comments: take the bare addresses
        parsed = [("", addr) for addr in _ADDR_SPEC.findall(" ".join(hidden))]
    pairs = []
    for name, addr in parsed:
        name = decode_text(show(name))
        addr = decode_text(show(addr)).strip().lower()
        if addr and "@" in addr and len(addr) <= 254:
            pairs.append((name.strip(), addr))
    return pairs


def parse_date(value) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(decode_text(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not (1970 <= parsed.year <= 9000):
        return None
    return parsed


# --- HTML -----------------------------------------------------------------------------------

_ALLOWED_TAGS = nh3.ALLOWED_TAGS | {"font", "center", "span", "div", "u", "s", "hr"}
_ALLOWED_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "font": {"color"},
    "a": {"href", "title"},
}


def _solo_imagenes_del_correo(tag: str, attribute: str, value: str) -> str | None:
    """Images come only from the mail itself (`cid:`): a remote or relative source would
    tell the sender when an agent read it, or make the agent's browser call our own pages."""
    if tag == "img" and attribute == "src" and not value.lower().startswith("cid:"):
        return None
    return value


def sanitise_html(html: str) -> str:
    """HTML safe to show in a page: no scripts, styles, handlers or remote-loading tricks.

    `cid:` image sources stay, so pages can show inline images from the mail's attachments.
    """
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid", "tel"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=_solo_imagenes_del_correo,
    )


class _TextExtractor(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except (AssertionError, ValueError):  # pathological markup: keep what was read
        pass
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- Raw mail -------------------------------------------------------------------------------

_KEPT_HEADERS = 60
_AUTO_SENDERS = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+\-.].*)?@", re.IGNORECASE
)


def remitente_automatico(email: str) -> bool:
    """Whether an address is a machine's (mailer-daemon, no-reply…): never acknowledged."""
    return bool(_AUTO_SENDERS.match(email or ""))


def _part_text(part: Message) -> str:
    payload = _contenido(part)
    if payload is None:
        payload = part.get_payload()
        return _sano(payload) if isinstance(payload, str) else ""
    return _decode_bytes(payload, part.get_content_charset(), _charsets_del_mensaje.get())


def _filename(part: Message) -> str:
    """The declared file name: Content-Disposition `filename`, else Content-Type `name`
    (RFC 2231, RFC 2047 or raw 8-bit); "" when neither gives one (`filename=""` included)."""
    name = ""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = part.get_param(param, header=header)
        except (LookupError, UnicodeError, ValueError, TypeError):
            value = None
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded text)
            charset, _, text = value
            try:
                value = _decode_bytes(text.encode("latin-1"), charset or "utf-8")
            except UnicodeEncodeError:
                value = text
        name = decode_text(value) if value else ""
        if name.strip():
            break
    return nombre_de_archivo(name)


def nombre_de_archivo(name: str) -> str:
    """A file name safe to store and offer: the last path component, no control characters."""
    name = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:255]


def _leaves(part: Message, depth: int = 0):
    """The leaf parts in order; an attached message (message/rfc822) is one leaf."""
    payload = part.get_payload()
    if part.get_content_maintype() == "multipart" and isinstance(payload, list) and depth < 50:
        for sub in payload:
            if isinstance(sub, Message):
                yield from _leaves(sub, depth + 1)
    else:
        yield part


def _attached_message(part: Message) -> tuple[bytes, str]:
    """The bytes and subject of a message/rfc822 part."""
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else inner
    if isinstance(inner, Message):
        try:
            return _restaurar_bytes(inner.as_bytes()), decode_text(inner.get("Subject"))
        except (LookupError, UnicodeError, ValueError, TypeError, KeyError):
            return str(inner).encode("utf-8", "replace"), ""
    return (inner or "").encode("utf-8", "replace") if isinstance(inner, str) else b"", ""


def _walk(
    msg: Message, mensaje: MensajeEntrante, limite_adjuntos: int, cortado: bool = False
) -> None:
    """Bodies and attachments of the leaf parts. With `cortado` the message is only the start
    of one: its last leaf is cut short, so its text is kept with a note and an attachment
    left out (what follows it was never read)."""
    textos, htmls = [], []
    usado = 0
    hojas = list(_leaves(msg))
    for i, part in enumerate(hojas):
        ultima_cortada = cortado and i == len(hojas) - 1
        ctype = part.get_content_type()
        if part.get_content_maintype() == "multipart":
            if not isinstance(part.get_payload(), str):
                continue  # nested deeper than we follow
            ctype = "text/plain"  # its boundary is missing or never occurs: the body is text
        disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        nombre = _filename(part)
        content_id = (decode_text(part.get("Content-ID")) or "").strip().strip("<>")
        es_cuerpo = (
            disposition != "attachment" and not nombre and ctype in ("text/plain", "text/html")
        )
        if es_cuerpo:
            (textos if ctype == "text/plain" else htmls).append(_part_text(part))
            if ultima_cortada:
                mensaje.notas.append(_("The text of the message is cut where the download ended."))
            continue
        if ultima_cortada:
            mensaje.notas.append(
                _("Attachment left out, cut where the download ended: %(nombre)s.")
                % {"nombre": nombre or ctype}
            )
            continue
        if ctype == "message/delivery-status":
            mensaje.rebotados.extend(_failed_recipients(part))
        if ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            mensaje.originales.extend(_original_ids(part))
        if part.get_content_maintype() == "message" and part.is_multipart():
            contenido, asunto = _attached_message(part)
            nombre = nombre or (
                re.sub(r'[\\/:*?"<>|]', "_", asunto)[:200] + ".eml" if asunto else ""
            )
        else:
            contenido = _contenido(part)
            if contenido is None:
                inner = part.get_payload()
                contenido = inner.encode("utf-8", "replace") if isinstance(inner, str) else b""
        if usado + len(contenido) > limite_adjuntos:
            mensaje.notas.append(
                f"Adjunto omitido por tamaño: {nombre or ctype} ({len(contenido)} bytes)."
            )
            continue
        usado += len(contenido)
        if not nombre:
            extension = {"message/rfc822": ".eml", "text/plain": ".txt", "image/jpg": ".jpg"}
            extension = extension.get(ctype) or mimetypes.guess_extension(ctype) or ".bin"
            nombre = f"adjunto{extension}"
            if ctype == "message/delivery-status":
                nombre = "delivery-status.txt"
        mensaje.adjuntos.append(
            AdjuntoEntrante(
                nombre=nombre,
                content_type=ctype,
                contenido=contenido,
                content_id=content_id[:255],
                en_linea=bool(content_id) and disposition != "attachment",
            )
        )
    mensaje.texto = "\n\n".join(t for t in textos if t.strip()).strip()
    html = "\n".join(h for h in htmls if h.strip())
    mensaje.html = sanitise_html(html)
    if not mensaje.texto and html:
        # From the sanitised HTML: it is well-formed, where the raw one can make the parser
        # take quadratic time.
        mensaje.texto = html_to_text(mensaje.html)


def _original_ids(part: Message) -> list[str]:
    """Message-ID of a returned message (message/rfc822 or its headers only)."""
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else inner
    if isinstance(inner, str):
        inner = email.message_from_string(inner, policy=_POLICY)
    if not isinstance(inner, Message):
        return []
    return message_ids(inner.get("Message-ID"))[:1]


def _failed_recipients(part: Message) -> list[str]:
    """Final-Recipient of each failed action in a delivery-status part."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else [part]
    failed = []
    for block in blocks:
        text = block.as_string() if isinstance(block, Message) else str(block)
        for chunk in re.split(r"\n\s*\n", text):
            action = re.search(r"^Action:\s*(\S+)", chunk, re.IGNORECASE | re.MULTILINE)
            recipient = re.search(
                r"^Final-Recipient:\s*[^;]*;\s*<?([^>\s]+@[^>\s]+)>?", chunk, re.I | re.M
            )
            if recipient and (not action or action.group(1).lower() == "failed"):
                failed.append(recipient.group(1).lower())
    return failed


def tipo_automatico(msg: Message, de_email: str, own_domain: str) -> str:
    get = msg.get
    ctype = msg.get_content_type()
    if ctype == "multipart/report" and "delivery-status" in (msg.get_param("report-type") or ""):
        return "rebote"
    if de_email and re.match(r"^(mailer-daemon|postmaster)@", de_email):
        return "rebote"
    if get("X-Incidencias-Ticket") or any(
        es_message_id_propio(i, own_domain) for i in message_ids(get("Message-ID"))
    ):
        return "bucle"
    auto = decode_text(get("Auto-Submitted")).lower()
    if auto and auto != "no":
        return "autorespuesta"
    if get("X-Autoreply") or get("X-Autorespond") or get("X-Auto-Response-Suppress"):
        return "autorespuesta"
    if decode_text(get("Precedence")).lower() in ("bulk", "list", "junk", "auto_reply"):
        return "autorespuesta"
    if get("List-Id") or get("List-Unsubscribe") or get("X-Loop"):
        return "autorespuesta"
    if de_email and _AUTO_SENDERS.match(de_email):
        return "autorespuesta"
    return ""


MESSAGE_ID_PREFIX = "incidencias."


def generar_message_id(domain: str) -> str:
    """A Message-ID for mail the portal sends (without <>); `es_message_id_propio` knows it."""
    import uuid

    return f"{MESSAGE_ID_PREFIX}{uuid.uuid4().hex}@{domain}"


def es_message_id_propio(message_id: str, own_domain: str) -> bool:
    local, _, domain = message_id.lower().rpartition("@")
    return bool(own_domain) and local.startswith(MESSAGE_ID_PREFIX) and domain == own_domain


class _RawHeaderPolicy(Compat32):
    """compat32, but header values come back as the raw str (8-bit bytes as surrogates)
    instead of lossy `Header` objects, so `decode_text` can decode them properly."""

    def header_fetch_parse(self, name, value):
        return value


_POLICY = _RawHeaderPolicy()


def parse_raw(
    raw: bytes, *, max_bytes: int, own_domain: str = "", tamano_completo: int | None = None
) -> MensajeEntrante:
    """Normalise one RFC 5322 message. Attachments beyond `max_bytes` in all are left out,
    each with a note; the message itself always comes through.

    `tamano_completo` larger than `raw` says `raw` is only the start of a message of that size
    (a mailbox's message over IMAP_MAX_BYTES): what was not read is noted."""
    cortado = tamano_completo is not None and tamano_completo > len(raw)
    tramos = _apartar_tramos(raw) if len(raw) > GRANDE else None
    msg = notas = None
    if tramos is not None:
        esqueleto, tramos = tramos
        msg, notas = _leer(esqueleto)
        if not _restaurar(msg, tramos):
            msg = None  # a placeholder ended up where the parse needs it whole: parse it all
        del esqueleto
    if msg is None:
        tramos = None
        msg, notas = _leer(raw)
    token = _charsets_del_mensaje.set(_charsets_declarados(msg))
    token_tramos = _tramos_del_mensaje.set(tramos)
    # Notes are stored with the entry: in the site's language, whoever triggered the poll.
    idioma = translation.override(settings.LANGUAGE_CODE) if cortado else nullcontext()
    try:
        with idioma:
            mensaje = _parse(msg, raw, max_bytes=max_bytes, own_domain=own_domain, cortado=cortado)
            if cortado:
                mensaje.notas.insert(
                    0,
                    _(
                        "The message is %(total)s bytes, more than the %(maximo)s a mailbox "
                        "message may be (IMAP_MAX_BYTES): only its first %(leidos)s bytes were "
                        "read and kept; the rest, with any attachment in it, was left out."
                    )
                    % {
                        "total": tamano_completo,
                        "maximo": settings.IMAP_MAX_BYTES,
                        "leidos": len(raw),
                    },
                )
    finally:
        _charsets_del_mensaje.reset(token)
        _tramos_del_mensaje.reset(token_tramos)
    mensaje.notas[:0] = notas
    return mensaje.sanear()


def _leer(raw: bytes) -> tuple[Message, list[str]]:
    msg = email.message_from_bytes(raw, policy=_POLICY)
    notas = []
    if any(isinstance(d, email_errors.MissingHeaderBodySeparatorDefect) for d in msg.defects):
        reparado = _reparar_cabeceras(raw)
        if reparado is not None:
            msg = email.message_from_bytes(reparado, policy=_POLICY)
            notas.append("Cabecera rota (una línea sin nombre ni sangría): se reparó al leerla.")
    return msg, notas


# --- Big messages ----------------------------------------------------------------------------

GRANDE = 1024 * 1024  # messages larger than this have their long body runs set aside
_TRAMO_MINIMO = 64 * 1024  # shorter runs are parsed as usual

# A line the parser reads as plain text wherever it stands: not blank, no leading white
# space, no colon (so never a header), no leading "-" (never a boundary), not "From ". The
# parser splits lines at CR LF, LF and a lone CR; a run joins lines by CR LF or LF only and
# leaves out the line break after its last line, which the parser strips before a boundary.
_LINEA = rb"(?!From )[^\r\n\t :\-][^\r\n:]*+(?=[\r\n]|\Z)"
_TRAMO = re.compile(rb"(?<=[\r\n])" + _LINEA + rb"(?:\r?\n" + _LINEA + rb")*+")
_SEPARADOR = re.compile(rb"\r?\n\r?\n")

# While a big message is parsed: its raw bytes and where each placeholder's run is in them.
_tramos_del_mensaje: ContextVar["_Tramos | None"] = ContextVar("tramos", default=None)


@dataclass
class _Tramos:
    raw: bytes
    prefijo: str  # every placeholder starts with it (random per message)
    posiciones: dict[str, tuple[int, int]]
    patron: re.Pattern


def _apartar_tramos(raw: bytes) -> tuple[bytes, _Tramos] | None:
    """The message with each long run of body lines replaced by a placeholder line, and where
    the runs are; None when it has none. Headers of the message itself are never touched."""
    separador = _SEPARADOR.search(raw)
    if separador is None:
        return None
    vista = memoryview(raw)
    prefijo = f"XINCIDENCIASTRAMO{secrets.token_hex(8).upper()}N"
    piezas, posiciones, pos = [], {}, 0
    for match in _TRAMO.finditer(raw, separador.end() - 1):
        if match.end() - match.start() < _TRAMO_MINIMO:
            continue
        marca = f"{prefijo}{len(posiciones)}X"
        piezas += [vista[pos : match.start()], marca.encode("ascii")]
        posiciones[marca] = (match.start(), match.end())
        pos = match.end()
    if not posiciones:
        return None
    piezas.append(vista[pos:])
    patron = re.compile(re.escape(prefijo) + r"\d+X")
    return b"".join(piezas), _Tramos(raw, prefijo, posiciones, patron)


def _restaurar(msg: Message, tramos: _Tramos) -> bool:
    """Put back, in the parsed skeleton, every run that is not the whole body of a part (those
    are decoded when read). False if a placeholder is missing: it fell where it cannot be
    put back (a header), so the skeleton cannot stand for the message."""
    vistos: set[str] = set()

    def texto(marca: str) -> str:
        inicio, fin = tramos.posiciones[marca]
        return tramos.raw[inicio:fin].decode("ascii", "surrogateescape")

    def restaurado(valor):
        if not isinstance(valor, str) or tramos.prefijo not in valor:
            return valor
        if valor in tramos.posiciones:
            vistos.add(valor)
            return valor

        def poner(match):
            vistos.add(match.group())
            return texto(match.group()) if match.group() in tramos.posiciones else match.group()

        return tramos.patron.sub(poner, valor)

    pila = [msg]
    while pila:
        part = pila.pop()
        part.preamble = restaurado(part.preamble)
        part.epilogue = restaurado(part.epilogue)
        payload = part._payload  # the raw payload: get_payload() may decode it
        if isinstance(payload, list):
            pila.extend(sub for sub in payload if isinstance(sub, Message))
        elif isinstance(payload, Message):
            pila.append(payload)
        else:
            nuevo = restaurado(payload)
            if nuevo is not payload:
                part.set_payload(nuevo)
    return vistos >= set(tramos.posiciones)


def _tramo(part: Message) -> memoryview | None:
    """The raw body of a part whose whole body is a placeholder, else None."""
    tramos = _tramos_del_mensaje.get()
    if tramos is None:
        return None
    payload = part._payload  # get_payload() would decode a body with 8-bit bytes
    if not isinstance(payload, str) or payload not in tramos.posiciones:
        return None
    inicio, fin = tramos.posiciones[payload]
    return memoryview(tramos.raw)[inicio:fin]


_BASE64_LIMPIO = re.compile(rb"[A-Za-z0-9+/\r\n]*+(?:=[\r\n]*+){0,2}")


def _contenido(part: Message) -> bytes | None:
    """`part.get_payload(decode=True)`, from the raw bytes when its body was set aside."""
    vista = _tramo(part)
    if vista is None:
        return part.get_payload(decode=True)
    cte = str(part.get("content-transfer-encoding", "")).lower()
    if cte == "base64":
        tramos = _tramos_del_mensaje.get()
        inicio, fin = tramos.posiciones[part._payload]
        saltos = tramos.raw.count(b"\n", inicio, fin) + tramos.raw.count(b"\r", inicio, fin)
        if (len(vista) - saltos) % 4 == 0 and _BASE64_LIMPIO.fullmatch(vista):
            # Clean base64: the parser's strict decoding would give these bytes, no defects.
            return binascii.a2b_base64(vista)
    elif cte == "quoted-printable":
        return quopri.decodestring(vista)
    elif cte not in ("x-uuencode", "uuencode", "uue", "x-uue"):
        return bytes(vista)
    # Anything else the parser decodes itself, defects included, from the restored body.
    part.set_payload(bytes(vista).decode("ascii", "surrogateescape"))
    return part.get_payload(decode=True)


def _restaurar_bytes(data: bytes) -> bytes:
    """A part re-serialised (an attached message) with its placeholders put back, in the
    line breaks the generator writes (LF)."""
    tramos = _tramos_del_mensaje.get()
    if tramos is None or tramos.prefijo.encode() not in data:
        return data
    patron = re.compile(re.escape(tramos.prefijo.encode()) + rb"\d+X")

    def poner(match):
        posicion = tramos.posiciones.get(match.group().decode("ascii"))
        if posicion is None:
            return match.group()
        return tramos.raw[posicion[0] : posicion[1]].replace(b"\r\n", b"\n")

    return patron.sub(poner, data)


def _parse(
    msg: Message, raw: bytes, *, max_bytes: int, own_domain: str, cortado: bool = False
) -> MensajeEntrante:
    get = msg.get
    mensaje = MensajeEntrante(crudo=raw)
    ids = message_ids(get("Message-ID"))
    mensaje.message_id = ids[0] if ids else ""
    mensaje.in_reply_to = message_ids(get("In-Reply-To"))
    mensaje.references = message_ids(get("References"))
    mensaje.asunto = decode_text(get("Subject"))[:998]
    sender = addresses(msg.get_all("From") or [])
    if sender:
        mensaje.de_nombre, mensaje.de_email = sender[0]
    else:
        # No address in From (missing, `<>`, a bare name): Sender, else Reply-To, is where
        # an answer can go; the name stays From's.
        respuesta = addresses(msg.get_all("Sender") or []) or addresses(
            msg.get_all("Reply-To") or []
        )
        nombres = [name for name, _ in getaddresses([str(v) for v in msg.get_all("From") or []])]
        mensaje.de_nombre = decode_text(next((n for n in nombres if n), ""))
        if respuesta:
            mensaje.de_nombre = mensaje.de_nombre or respuesta[0][0]
            mensaje.de_email = respuesta[0][1]
    mensaje.para = [addr for _, addr in addresses(msg.get_all("To") or [])]
    mensaje.cc = [addr for _, addr in addresses(msg.get_all("Cc") or [])]
    mensaje.bcc = [addr for _, addr in addresses(msg.get_all("Bcc") or [])]
    mensaje.responder_a = [addr for _, addr in addresses(msg.get_all("Reply-To") or [])]
    mensaje.fecha = parse_date(get("Date"))
    headers = {}
    for key, value in msg.items()[:_KEPT_HEADERS]:
        key = str(key)[:100]
        if key.lower() not in headers:
            headers[key.lower()] = decode_text(value)[:2000]
    mensaje.headers = headers
    if len(raw) > max_bytes and not cortado:
        mensaje.notas.append(
            f"El mensaje mide {len(raw)} bytes, más que el límite de {max_bytes}: "
            "se conservan el texto y los adjuntos que caben."
        )
    _walk(msg, mensaje, limite_adjuntos=max_bytes, cortado=cortado)
    mensaje.automatico = tipo_automatico(msg, mensaje.de_email, own_domain)
    if mensaje.automatico == "rebote" and not mensaje.rebotados:
        mensaje.rebotados = _bounce_guess(mensaje.texto)
    if mensaje.automatico != "rebote":
        mensaje.originales = []  # a forwarded message is not one this mail refers to
    if msg.defects:
        mensaje.notas.append(
            "Defectos MIME: " + ", ".join(sorted({type(d).__name__ for d in msg.defects}))
        )
    return mensaje


def _charsets_declarados(msg: Message) -> tuple[str, ...]:
    found: dict[str, None] = {}
    stack = [(msg, 0)]
    while stack and len(found) < 10:
        part, depth = stack.pop()
        charset = part.get_param("charset")
        if isinstance(charset, str) and charset.isascii() and charset.strip():
            found.setdefault(charset.strip().lower())
        payload = part.get_payload()
        if isinstance(payload, list) and depth < 50:
            stack.extend((sub, depth + 1) for sub in reversed(payload) if isinstance(sub, Message))
    return tuple(found)


_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


def _reparar_cabeceras(raw: bytes) -> bytes | None:
    """The header block with its stray lines mended, or None when there is nothing to mend.

    A header folded without indentation (or a line of text before the first header) ends the
    header block for a strict parser, and From, Subject, Message-ID and the MIME structure that
    follow are read as body text. Up to the last line that looks like a header, a stray line
    becomes a continuation of the header before it; text before the first header is left out
    (the raw message keeps it)."""
    separator = re.search(rb"\r?\n\r?\n", raw)
    head, rest = (raw[: separator.start()], raw[separator.start() :]) if separator else (raw, b"")
    lines = head.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if _HEADER_LINE.match(line)]
    if not headers:
        return None
    out, seen = [], False
    for i, line in enumerate(lines):
        if i > headers[-1] or _HEADER_LINE.match(line) or line[:1] in (b" ", b"\t"):
            seen = seen or bool(_HEADER_LINE.match(line))
            out.append(line)
        elif i == 0 and line.startswith(b"From "):
            out.append(line)  # mbox separator
        elif seen:
            out.append(b" " + line)
    repaired = b"".join(out) + rest
    return repaired if repaired != raw else None


def _bounce_guess(text: str) -> list[str]:
    found = re.findall(r"<([^<>\s@]+@[^<>\s@]+\.[a-z]{2,})>", text[:20000], re.IGNORECASE)
    return sorted({addr.lower() for addr in found})[:10]
