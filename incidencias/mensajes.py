"""Incoming mail, normalised: raw RFC 5322 bytes and the correo/save JSON both become a
`MensajeEntrante`, which is all the pipeline (`incidencias.ingest`) ever reads.

Parsing uses the standard library's `compat32` policy with explicit header decoding: policy
`default` builds header objects eagerly and is several times slower on the same mail, and the
parse is the cost of ingestion. Nothing here raises on bad input: unknown charsets, broken
MIME and undecodable headers degrade to a best-effort text with a note.
"""

import email
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

import nh3

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


def decode_text(value) -> str:
    """An RFC 2047 header value as text, whatever its charsets claim."""
    if value is None:
        return ""
    if not isinstance(value, str):  # email.header.Header from compat32
        value = str(value)
    if _RAW_8BIT.search(value):
        # Raw 8-bit bytes in a header (RFC 6532, or a careless client): compat32 hands them
        # over as surrogates. UTF-8 when they are, else Latin-1, which always decodes.
        raw = value.encode("utf-8", "surrogateescape")
        value = _decode_bytes(raw, "utf-8")
    if "=?" not in value:
        return _unfold(value)
    try:
        return _unfold(str(make_header(decode_header(value))))
    except (LookupError, UnicodeError, ValueError, AssertionError):
        parts = []
        for chunk, charset in decode_header(value):
            if isinstance(chunk, bytes):
                parts.append(_decode_bytes(chunk, charset))
            else:
                parts.append(chunk)
        return _unfold("".join(parts))


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", "").replace("\n", " ").strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(_charset_alias(candidate))
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")  # never fails: every byte is a character


_CHARSET_ALIASES = {"unicode-1-1-utf-7": "utf-7", "x-unknown": "latin-1", "ks_c_5601-1987": "cp949"}


def _charset_alias(charset: str) -> str:
    charset = charset.strip().strip('"').lower()
    return _CHARSET_ALIASES.get(charset, charset)


def message_ids(value) -> list[str]:
    """The ids in a Message-ID, In-Reply-To or References header, in order, without <>."""
    text = decode_text(value)
    found = _MSGID.findall(text)
    if not found and text and " " not in text.strip() and "@" in text:
        found = [text.strip().strip("<>")]
    seen, out = set(), []
    for item in found:
        if item not in seen:
            seen.add(item)
            out.append(item[:998])
    return out


def addresses(values) -> list[tuple[str, str]]:
    """(name, lower-case address) pairs of address headers."""
    decoded = [decode_text(value) for value in values if value]
    pairs = []
    for name, addr in getaddresses(decoded):
        addr = addr.strip().lower()
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


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    return _decode_bytes(payload, part.get_content_charset())


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except (LookupError, UnicodeError, ValueError, TypeError):
        name = None
    if name is None:
        name = part.get_param("name", header="content-type")
        if isinstance(name, tuple):  # RFC 2231 triple
            name = email.utils.collapse_rfc2231_value(name)
    name = decode_text(name) if name else ""
    # Only the last path component, without control characters.
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
            return inner.as_bytes(), decode_text(inner.get("Subject"))
        except (LookupError, UnicodeError, ValueError, TypeError, KeyError):
            return str(inner).encode("utf-8", "replace"), ""
    return (inner or "").encode("utf-8", "replace") if isinstance(inner, str) else b"", ""


def _walk(msg: Message, mensaje: MensajeEntrante, limite_adjuntos: int) -> None:
    textos, htmls = [], []
    usado = 0
    for part in _leaves(msg):
        ctype = part.get_content_type()
        disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        nombre = _filename(part)
        content_id = (decode_text(part.get("Content-ID")) or "").strip().strip("<>")
        es_cuerpo = (
            disposition != "attachment" and not nombre and ctype in ("text/plain", "text/html")
        )
        if es_cuerpo:
            (textos if ctype == "text/plain" else htmls).append(_part_text(part))
            continue
        if ctype == "message/delivery-status":
            mensaje.rebotados.extend(_failed_recipients(part))
        if part.get_content_maintype() == "message" and part.is_multipart():
            contenido, asunto = _attached_message(part)
            nombre = nombre or (
                re.sub(r'[\\/:*?"<>|]', "_", asunto)[:200] + ".eml" if asunto else ""
            )
        else:
            contenido = part.get_payload(decode=True)
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
            extension = {"message/rfc822": "eml", "text/html": "html", "text/plain": "txt"}
            nombre = f"adjunto.{extension.get(ctype, 'bin')}"
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
        mensaje.texto = html_to_text(html)


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


def parse_raw(raw: bytes, *, max_bytes: int, own_domain: str = "") -> MensajeEntrante:
    """Normalise one RFC 5322 message. Attachments beyond `max_bytes` in all are left out,
    each with a note; the message itself always comes through."""
    msg = email.message_from_bytes(raw, policy=_POLICY)
    get = msg.get
    mensaje = MensajeEntrante(crudo=raw)
    ids = message_ids(get("Message-ID"))
    mensaje.message_id = ids[0] if ids else ""
    mensaje.in_reply_to = message_ids(get("In-Reply-To"))
    mensaje.references = message_ids(get("References"))
    mensaje.asunto = decode_text(get("Subject"))[:998]
    sender = addresses(msg.get_all("From") or []) or addresses(msg.get_all("Sender") or [])
    if sender:
        mensaje.de_nombre, mensaje.de_email = sender[0]
    else:
        name, addr = parseaddr(decode_text(get("From")))
        mensaje.de_nombre = name
        mensaje.de_email = addr.lower() if "@" in addr else ""
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
    if len(raw) > max_bytes:
        mensaje.notas.append(
            f"El mensaje mide {len(raw)} bytes, más que el límite de {max_bytes}: "
            "se conservan el texto y los adjuntos que caben."
        )
    _walk(msg, mensaje, limite_adjuntos=max_bytes)
    mensaje.automatico = tipo_automatico(msg, mensaje.de_email, own_domain)
    if mensaje.automatico == "rebote" and not mensaje.rebotados:
        mensaje.rebotados = _bounce_guess(mensaje.texto)
    if msg.defects:
        mensaje.notas.append(
            "Defectos MIME: " + ", ".join(sorted({type(d).__name__ for d in msg.defects}))
        )
    return mensaje


def _bounce_guess(text: str) -> list[str]:
    found = re.findall(r"<([^<>\s@]+@[^<>\s@]+\.[a-z]{2,})>", text[:20000], re.IGNORECASE)
    return sorted({addr.lower() for addr in found})[:10]
