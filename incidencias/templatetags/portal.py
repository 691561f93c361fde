"""Template tags of the agents' pages.

`{% filas_cola filas %}` draws the queue's rows and `{% entradas_hilo hilo %}` a ticket's
thread in Python, as Django admin draws its change list's cells (`items_for_result`): a page of
50 rows or entries through template nodes and includes reads well over a thousand variables and
translates each label again per row, which cost the page many times its SQL. Here the labels
and formats are looked up once per page and each row is one string, every text in it escaped
(only the thread's HTML bodies go in as they are: `html_seguro`, sanitised for the page). The
markup is the one the templates had; the tests read it as the browser does.
"""

import unicodedata
from html import escape

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone
from django.utils.dateformat import DateFormat, re_escaped, re_formatchars
from django.utils.dates import MONTHS
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext

from ..models import DetalleTicket, EstadoSLA, Prioridad, Ticket

register = template.Library()


def _dos(n: int) -> str:
    return f"{n:02d}"


# Date format characters written here directly (the same text as Django's formatter); any
# other is asked of Django's `DateFormat`.
_DIRECTOS = {
    "d": lambda v, meses: _dos(v.day),
    "j": lambda v, meses: str(v.day),
    "m": lambda v, meses: _dos(v.month),
    "n": lambda v, meses: str(v.month),
    "Y": lambda v, meses: f"{v.year:04d}",
    "y": lambda v, meses: _dos(v.year % 100),
    "H": lambda v, meses: _dos(v.hour),
    "G": lambda v, meses: str(v.hour),
    "i": lambda v, meses: _dos(v.minute),
    "s": lambda v, meses: _dos(v.second),
    "F": lambda v, meses: meses[v.month],
}


def _literal(texto: str):
    return lambda v, meses: texto


def _de_django(caracter: str):
    return lambda v, meses: str(getattr(DateFormat(v), caracter)())


def _compilar(formato: str) -> list:
    """`formato` (Django's date format) as one function per piece, split once: Django's
    formatter splits and unescapes the format again for every value."""
    piezas = []
    for i, pieza in enumerate(re_formatchars.split(formato)):
        if i % 2:
            piezas.append(_DIRECTOS.get(pieza) or _de_django(pieza))
        elif pieza:
            piezas.append(_literal(re_escaped.sub(r"\1", pieza)))
    return piezas


class Fechas:
    """`<time>` elements in the current time zone, in the language's `formato` (a format
    setting's name): the text of the `date` filter, with the format split once per page."""

    def __init__(self, formato: str = "SHORT_DATETIME_FORMAT"):
        self.piezas = _compilar(formats.get_format(formato))
        self.meses = {numero: str(nombre) for numero, nombre in MONTHS.items()}

    def _escribir(self, local) -> str:
        return "".join(pieza(local, self.meses) for pieza in self.piezas)

    def texto(self, valor) -> str:
        return self._escribir(timezone.localtime(valor))

    def __call__(self, valor) -> str:
        local = timezone.localtime(valor)
        return f'<time datetime="{local.isoformat()}">{escape(self._escribir(local))}</time>'


def _etiquetas(choices) -> dict[str, str]:
    return {valor: escape(capfirst(str(etiqueta))) for valor, etiqueta in choices.choices}


def _truncar(texto: str, largo: int) -> str:
    """`truncatechars`: at most `largo` characters, the last one an ellipsis when cut (in NFC,
    combining marks not counted: Django's Truncator, for the texts that need it)."""
    texto = unicodedata.normalize("NFC", texto)
    return texto if len(texto) <= largo else Truncator(texto).chars(largo)


@register.simple_tag
def filas_cola(filas) -> SafeString:
    """The `<tr>` of each (ticket, url) of a queue page (`selectors.cola`'s rows)."""
    estados = _etiquetas(Ticket.Estado)
    prioridades = _etiquetas(Prioridad)
    slas = _etiquetas(EstadoSLA)
    marcar = gettext("Check ticket #%(numero)s")
    sin_asunto = gettext("(no subject)")
    sin_asignar = f'<span class="tenue">{escape(gettext("Unassigned"))}</span>'
    fecha = Fechas()
    html = []
    for t, url in filas:
        pk, numero = int(t.pk), int(t.numero)
        asignado = t.asignado
        vence = t.vence_sla
        departamento = t.departamento.nombre if t.departamento else ""
        html.append(
            f'<tr data-fila><td><input type="checkbox" name="tickets" value="{pk}"'
            f' id="marcar-{pk}" data-marcar><label for="marcar-{pk}" class="visually-hidden">'
            f"{escape(marcar % {'numero': numero})}</label></td>"
            f"<td>{numero}</td>"
            f'<td class="asunto"><a href="{escape(url)}" data-abrir>'
            f"{escape(_truncar(t.asunto or sin_asunto, 90))}</a></td>"
            f"<td>{escape(t.solicitante_nombre or t.solicitante_email or '—')}</td>"
            f"<td>{escape(departamento or '—')}</td>"
            "<td>"
            + (escape(asignado.nombre or asignado.username) if asignado else sin_asignar)
            + "</td>"
            f'<td><span class="etiqueta estado-{escape(t.estado)}">'
            f"{estados.get(t.estado) or escape(t.estado)}</span></td>"
            f'<td><span class="etiqueta prioridad-{escape(t.prioridad)}">'
            f"{prioridades.get(t.prioridad) or escape(t.prioridad)}</span></td>"
            f'<td><span class="etiqueta sla-{escape(t.estado_sla)}">'
            f"{slas.get(t.estado_sla) or escape(t.estado_sla)}</span>"
            + (f"<br>{fecha(vence)}" if vence else "")
            + f"</td><td>{fecha(t.ultima_actividad)}</td></tr>"
        )
    return mark_safe("".join(html))  # noqa: S308 - every text above is escaped


def _lineas(texto: str) -> str:
    """`linebreaksbr`: the text escaped, each line break a `<br>`."""
    return escape(texto.replace("\r\n", "\n").replace("\r", "\n")).replace("\n", "<br>")


@register.simple_tag
def entradas_hilo(hilo) -> SafeString:
    """The `<li>` of each entry of a ticket's thread (`selectors.hilo`, with `lista_adjuntos`
    and `html_seguro` set by the page): kind, author, date, addresses, body, attachments."""
    Tipo = DetalleTicket.Tipo
    tipos = _etiquetas(Tipo)
    automaticos = {
        valor: escape(str(etiqueta)) for valor, etiqueta in DetalleTicket.Automatico.choices
    }
    remitente_desconocido = escape(gettext("unknown sender"))
    sistema = escape(gettext("System"))
    para, cc = escape(gettext("To")), escape(gettext("Cc"))
    adjuntos_etiqueta = escape(gettext("Attachments"))
    sin_nombre = gettext("attachment")
    fecha = Fechas("DATETIME_FORMAT")
    html = []
    for entrada in hilo:
        pk, tipo = int(entrada.pk), entrada.tipo
        if tipo == Tipo.ENTRANTE:
            autor = escape(entrada.de) if entrada.de else remitente_desconocido
        elif entrada.autor_id and entrada.autor:
            autor = escape(entrada.autor.nombre or entrada.autor.username)
        elif tipo == Tipo.EVENTO:
            autor = sistema
        else:
            autor = None
        partes = [
            f'<li class="entrada entrada-{escape(tipo)}"><article aria-labelledby="entrada-{pk}">'
            f'<header class="entrada-cabecera"><h3 id="entrada-{pk}"><span class="entrada-tipo">'
            f"{tipos.get(tipo) or escape(tipo)}</span>",
            f' <span class="entrada-autor">{autor}</span>' if autor else "",
            f"</h3>{fecha(entrada.creado)}",
        ]
        if entrada.automatico:
            etiqueta = automaticos.get(entrada.automatico) or escape(entrada.automatico)
            partes.append(f'<span class="insignia">{etiqueta}</span>')
        partes.append("</header>")
        if tipo in (Tipo.ENTRANTE, Tipo.RESPUESTA) and (entrada.para or entrada.cc):
            direcciones = []
            if entrada.para:
                direcciones.append(f"{para}: {escape(entrada.para)}")
            if entrada.cc:
                direcciones.append(f"{cc}: {escape(entrada.cc)}")
            partes.append(f'<p class="entrada-direcciones">{" · ".join(direcciones)}</p>')
        html_seguro = getattr(entrada, "html_seguro", "")
        if html_seguro:
            partes.append(f'<div class="entrada-cuerpo entrada-html">{html_seguro}</div>')
        elif entrada.texto:
            partes.append(
                f'<div class="entrada-cuerpo entrada-texto">{_lineas(entrada.texto)}</div>'
            )
        adjuntos = getattr(entrada, "lista_adjuntos", None)
        if adjuntos:
            partes.append(f'<ul class="adjuntos" aria-label="{adjuntos_etiqueta}">')
            for adjunto in adjuntos:
                partes.append(
                    f'<li><a href="{escape(adjunto.url)}">{escape(adjunto.nombre or sin_nombre)}'
                    f"</a> <small>({escape(filesizeformat(adjunto.tamano))})</small></li>"
                )
            partes.append("</ul>")
        partes.append("</article></li>")
        html.append("".join(partes))
    return mark_safe("".join(html))  # noqa: S308 - escaped above; html_seguro is sanitised


@register.simple_tag
def campo(campo) -> SafeString:
    """One form field (a BoundField): its label, the widget, its help and its errors, the
    widget described by both (the ids Django's `aria-describedby` names)."""
    auto_id = campo.auto_id
    partes = [
        f'<p class="campo"><label for="{escape(campo.id_for_label or "")}">'
        f"{conditional_escape(campo.label)}</label>\n{campo}\n"
    ]
    if campo.help_text:
        partes.append(
            f'<small id="{escape(auto_id)}_helptext">{conditional_escape(campo.help_text)}</small>'
        )
    if campo.errors:
        errores = " ".join(escape(str(error)) for error in campo.errors)
        partes.append(f'<span class="error" id="{escape(auto_id)}_error">{errores}</span>')
    partes.append("</p>")
    return mark_safe("".join(partes))  # noqa: S308 - escaped above; the widget is Django's
