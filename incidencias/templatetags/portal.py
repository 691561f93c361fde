"""Template tags of the agents' pages.

`{% filas_cola filas %}` draws the queue's rows in Python, as Django admin draws its change
list's cells (`items_for_result`): a page of 50 rows through template nodes reads some 1,400
variables and translates each label again per row, which cost the page more than its SQL. Here
the labels and formats are looked up once per page and each row is one string, every text in it
escaped. The markup is the one the template had; the tests read it as the browser does.
"""

from html import escape

from django import template
from django.utils import formats, timezone
from django.utils.dateformat import format as formato_fecha
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext

from ..models import EstadoSLA, Prioridad, Ticket

register = template.Library()

# Django's date format characters that strftime writes the same way, in any locale.
_STRFTIME = {"d": "%d", "m": "%m", "Y": "%Y", "y": "%y", "H": "%H", "i": "%M", "s": "%S"}


def _strftime(formato: str) -> str | None:
    """`formato` (Django's date format) as a strftime format, or None when it uses a
    character strftime would not write as Django does (month names, a.m./p.m.)."""
    partes, escapado = [], False
    for caracter in formato:
        if escapado:
            partes.append("%%" if caracter == "%" else caracter)
            escapado = False
        elif caracter == "\\":
            escapado = True
        elif caracter in _STRFTIME:
            partes.append(_STRFTIME[caracter])
        elif caracter.isalpha():
            return None
        else:
            partes.append("%%" if caracter == "%" else caracter)
    return "".join(partes)


class Fechas:
    """`<time>` elements in the current time zone, in the language's `formato` (a format
    setting's name). The same text as the `date` filter: through strftime when the format
    allows it, Django's formatter otherwise."""

    def __init__(self, formato: str = "SHORT_DATETIME_FORMAT"):
        self.formato = formats.get_format(formato)
        self.strftime = _strftime(self.formato)

    def texto(self, valor) -> str:
        local = timezone.localtime(valor)
        if self.strftime is not None:
            return local.strftime(self.strftime)
        return formato_fecha(local, self.formato)

    def __call__(self, valor) -> str:
        local = timezone.localtime(valor)
        texto = (
            local.strftime(self.strftime)
            if self.strftime is not None
            else formato_fecha(local, self.formato)
        )
        return f'<time datetime="{local.isoformat()}">{escape(texto)}</time>'


def _etiquetas(choices) -> dict[str, str]:
    return {valor: escape(capfirst(str(etiqueta))) for valor, etiqueta in choices.choices}


def _truncar(texto: str, largo: int) -> str:
    """`truncatechars`: at most `largo` characters, the last one an ellipsis when cut."""
    return texto if len(texto) <= largo else texto[: largo - 1] + "…"


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
