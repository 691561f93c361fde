"""SLA clocks: due dates counted in business minutes of a calendar, stopped while a ticket waits
on the customer (or is solved), and the sweep that raises each warning and breach once.

Each target (first response, resolution) has a due moment (`vence_*`) and a warning moment
(`aviso_*`, start + SLA_AVISO_PORCENTAJE % of the target, or the policy's own percentage).
`Ticket.sla_proximo` is the earliest of the moments the sweep still has to act on (None: none,
or the clock is stopped), so the sweep is one indexed range query.
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Least, NullIf
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import configuracion
from .models import Calendario, DetalleTicket, Feriado, Notificacion, PoliticaSLA, Prioridad, Ticket
from .notificaciones import notificar_lote

_MAX_DAYS = 3 * 366
PRIMERA_RESPUESTA, RESOLUCION = "primera_respuesta", "resolucion"
OBJETIVOS = (PRIMERA_RESPUESTA, RESOLUCION)
# States in which the clock runs; in the others (waiting on the customer, solved, closed) it
# stands still.
ACTIVOS = (Ticket.Estado.NUEVO, Ticket.Estado.ABIERTO)
# The fields the clock may change on a ticket (for save(update_fields=...)).
CAMPOS = [
    "resuelto_en",
    "cerrado_en",
    "sla_pausado_en",
    "vence_primera_respuesta",
    "vence_resolucion",
    "aviso_primera_respuesta",
    "aviso_resolucion",
    "sla_proximo",
]


def _spans(calendario: Calendario, weekday: int) -> list[tuple[time, time]]:
    """The opening spans of a weekday; anything malformed in `horario` is skipped."""
    horario = calendario.horario if isinstance(calendario.horario, dict) else {}
    dia = horario.get(str(weekday), [])
    spans = []
    for span in dia if isinstance(dia, list) else []:
        try:
            start, end = span
            a, b = time.fromisoformat(start), time.fromisoformat(end)
        except (TypeError, ValueError):
            continue
        if a < b:
            spans.append((a, b))
    return sorted(spans)


def _zona(calendario: Calendario) -> ZoneInfo:
    try:
        return ZoneInfo(calendario.zona_horaria)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _siempre_abierto(calendario: Calendario) -> bool:
    return not any(_spans(calendario, day) for day in range(7))


def sumar_minutos_habiles(
    inicio: datetime, minutos: float, calendario: Calendario, feriados: set[date] | None = None
) -> datetime:
    """The moment `minutos` business minutes after `inicio` in `calendario`.

    A calendar with no opening hours counts every minute (24/7).
    """
    if minutos <= 0:
        return inicio
    tz = _zona(calendario)
    if _siempre_abierto(calendario):
        return inicio + timedelta(minutes=minutos)
    feriados = feriados or set()
    current = inicio.astimezone(tz)
    remaining = timedelta(minutes=minutos)
    for _dia in range(_MAX_DAYS):
        day = current.date()
        if day not in feriados:
            for start, end in _spans(calendario, day.weekday()):
                span_start = datetime.combine(day, start, tz)
                span_end = datetime.combine(day, end, tz)
                if current >= span_end:
                    continue
                begin = max(current, span_start)
                available = span_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
                current = span_end
        current = datetime.combine(day + timedelta(days=1), time(0), tz)
    raise ValueError("the calendar has no opening hours in the next three years")


def minutos_habiles_entre(
    inicio: datetime, fin: datetime, calendario: Calendario, feriados: set[date] | None = None
) -> float:
    """The business minutes of `calendario` between two moments (0 if `fin` is not later)."""
    if fin <= inicio:
        return 0.0
    if _siempre_abierto(calendario):
        return (fin - inicio).total_seconds() / 60
    tz = _zona(calendario)
    feriados = feriados or set()
    inicio, fin = inicio.astimezone(tz), fin.astimezone(tz)
    total = timedelta()
    day = inicio.date()
    while day <= fin.date():
        if day not in feriados:
            for start, end in _spans(calendario, day.weekday()):
                a = max(inicio, datetime.combine(day, start, tz))
                b = min(fin, datetime.combine(day, end, tz))
                if b > a:
                    total += b - a
        day += timedelta(days=1)
    return total.total_seconds() / 60


def _politica(ticket: Ticket) -> tuple[PoliticaSLA, frozenset[date]] | None:
    """The ticket's policy (department × priority) and its calendar's holidays, cached."""
    if ticket.departamento_id is None:
        return None

    def cargar():
        politica = (
            PoliticaSLA.objects.select_related("calendario")
            .filter(departamento_id=ticket.departamento_id, prioridad=ticket.prioridad)
            .first()
        )
        if politica is None:
            return None
        feriados = frozenset(politica.calendario.feriados.values_list("fecha", flat=True))
        return politica, feriados

    return configuracion.leer(("sla", ticket.departamento_id, ticket.prioridad), cargar)


# What `sla_fijar_plazos` sets: the due dates, the warnings and the sweep's next moment.
CAMPOS_RELOJ = (
    "vence_primera_respuesta",
    "aviso_primera_respuesta",
    "vence_resolucion",
    "aviso_resolucion",
    "sla_proximo",
)


def sla_fijar_plazos(*, ticket: Ticket, desde: datetime) -> bool:
    """Set the ticket's due dates and warning moments from `desde` by its policy (not saved).

    False when no policy applies. Raises ValueError when the calendar cannot place them."""
    encontrada = _politica(ticket)
    if encontrada is None:
        return False
    politica, feriados = encontrada
    calendario = politica.calendario
    porcentaje = politica.aviso_porcentaje or settings.SLA_AVISO_PORCENTAJE
    plazos = {}
    for objetivo, minutos in (
        (PRIMERA_RESPUESTA, politica.primera_respuesta_min),
        (RESOLUCION, politica.resolucion_min),
    ):
        plazos[f"vence_{objetivo}"] = sumar_minutos_habiles(desde, minutos, calendario, feriados)
        plazos[f"aviso_{objetivo}"] = sumar_minutos_habiles(
            desde, minutos * porcentaje / 100, calendario, feriados
        )
    for campo, valor in plazos.items():
        setattr(ticket, campo, valor)
    ticket.sla_proximo = sla_proximo(ticket)
    return True


def sla_vencimientos(*, ticket: Ticket, desde: datetime) -> tuple[datetime, datetime] | None:
    """(first response due, resolution due) for the ticket's department and priority; also
    sets them and the warning moments on the ticket (`sla_fijar_plazos`)."""
    if not sla_fijar_plazos(ticket=ticket, desde=desde):
        return None
    return ticket.vence_primera_respuesta, ticket.vence_resolucion


def sla_proximo(ticket: Ticket) -> datetime | None:
    """The next moment the sweep has something to do for this ticket (None: nothing)."""
    if ticket.estado not in ACTIVOS or ticket.sla_pausado_en is not None:
        return None
    momentos = []
    for objetivo, cumplido in (
        (PRIMERA_RESPUESTA, ticket.primera_respuesta_en),
        (RESOLUCION, ticket.resuelto_en),
    ):
        if cumplido is not None:
            continue
        aviso, vence = getattr(ticket, f"aviso_{objetivo}"), getattr(ticket, f"vence_{objetivo}")
        if aviso is not None and getattr(ticket, f"avisado_{objetivo}_en") is None:
            momentos.append(aviso)
        if vence is not None and getattr(ticket, f"incumplido_{objetivo}_en") is None:
            momentos.append(vence)
    return min(momentos, default=None)


# The same as `sla_proximo`, in SQL, for the sweep's bulk update.
_NUNCA = datetime(9999, 12, 31, tzinfo=UTC)


def _proximo_sql():
    """`sla_proximo` in SQL (the same as `sla_proximo()`), for the sweep's bulk update."""
    partes = []
    for objetivo, cumplido in (
        (PRIMERA_RESPUESTA, "primera_respuesta_en"),
        (RESOLUCION, "resuelto_en"),
    ):
        for momento, levantado in (
            (f"aviso_{objetivo}", f"avisado_{objetivo}_en"),
            (f"vence_{objetivo}", f"incumplido_{objetivo}_en"),
        ):
            pendiente = Q(
                **{
                    f"{cumplido}__isnull": True,
                    f"{levantado}__isnull": True,
                    f"{momento}__isnull": False,
                }
            )
            partes.append(Case(When(pendiente, then=F(momento)), default=Value(_NUNCA)))
    # Ticket states are not looked at: the sweep only updates active, running tickets.
    return NullIf(Least(*partes), Value(_NUNCA))


# --- The clock through a ticket's states ----------------------------------------------------


def sla_estado_cambiado(
    *, ticket: Ticket, anterior: str, ahora: datetime | None = None
) -> list[str]:
    """Keep the clock in step with a change of `ticket.estado` from `anterior` (in memory);
    returns the fields to save. Solving records `resuelto_en`, closing `cerrado_en`; leaving an
    active state stops the clock; coming back to one (a customer's reply, an agent) moves the
    unmet targets later by the business minutes it stood still, and reopening clears
    `resuelto_en`/`cerrado_en`."""
    ahora = ahora or timezone.now()
    estado = ticket.estado
    if estado == Ticket.Estado.RESUELTO and ticket.resuelto_en is None:
        ticket.resuelto_en = ahora
    if estado == Ticket.Estado.CERRADO and ticket.cerrado_en is None:
        ticket.cerrado_en = ahora
    if estado in ACTIVOS:
        ticket.resuelto_en = ticket.cerrado_en = None
        if ticket.sla_pausado_en is not None:
            _reanudar(ticket, ahora)
    elif ticket.sla_pausado_en is None:
        ticket.sla_pausado_en = ahora
    ticket.sla_proximo = sla_proximo(ticket)
    return list(CAMPOS)


def _reanudar(ticket: Ticket, ahora: datetime) -> None:
    encontrada = _politica(ticket)
    pausa = ticket.sla_pausado_en
    ticket.sla_pausado_en = None
    if encontrada is None:
        return
    politica, feriados = encontrada
    minutos = minutos_habiles_entre(pausa, ahora, politica.calendario, feriados)
    if minutos <= 0:
        return
    objetivos = [RESOLUCION]
    if ticket.primera_respuesta_en is None:
        objetivos.append(PRIMERA_RESPUESTA)
    for objetivo in objetivos:
        if getattr(ticket, f"incumplido_{objetivo}_en") is not None:
            continue  # a breach already raised stays a breach: its due date does not move
        for campo in (f"vence_{objetivo}", f"aviso_{objetivo}"):
            momento = getattr(ticket, campo)
            if momento is not None:
                setattr(
                    ticket,
                    campo,
                    sumar_minutos_habiles(momento, minutos, politica.calendario, feriados),
                )


# --- The sweep ------------------------------------------------------------------------------


def _nota_prioridad(anterior: str, nueva: str, objetivo: str) -> str:
    """The thread's note of a priority raised by a breach, in the site's language."""
    with translation.override(settings.LANGUAGE_CODE):
        return _("Priority raised from %(anterior)s to %(nueva)s: SLA breached (%(objetivo)s)") % {
            "anterior": Prioridad(anterior).label,
            "nueva": Prioridad(nueva).label,
            "objetivo": _("first response") if objetivo == PRIMERA_RESPUESTA else _("resolution"),
        }


@dataclass
class Barrido:
    avisos: int = 0
    incumplidos: int = 0
    prioridades: int = 0


_SIGUIENTE_PRIORIDAD = dict(zip(Prioridad.values, Prioridad.values[1:], strict=False))
# Per target: the fields of when it was met, its due and warning moments, and when its warning
# and its breach were raised.
_CAMPOS_OBJETIVO = [
    (o, c, f"vence_{o}", f"aviso_{o}", f"avisado_{o}_en", f"incumplido_{o}_en")
    for o, c in ((PRIMERA_RESPUESTA, "primera_respuesta_en"), (RESOLUCION, "resuelto_en"))
]


def sla_barrer(*, ahora: datetime | None = None) -> Barrido:
    """Raise the SLA warnings and breaches that are due, each once per ticket and target.

    One indexed select of the due tickets (locked; a concurrent sweep skips them), the raised
    events recorded on the tickets and `sla_proximo` recomputed in bulk, the notifications
    written in one batch: a constant number of queries whatever the number of tickets. A breach
    raises the priority one step when SLA_SUBIR_PRIORIDAD is on."""
    ahora = ahora or timezone.now()
    barrido = Barrido()
    subir = settings.SLA_SUBIR_PRIORIDAD
    zona = timezone.get_current_timezone()
    with transaction.atomic():
        tickets = list(
            # NO KEY UPDATE: a concurrent insert that refers to the ticket (an entry, a
            # notification) need not wait for the sweep, which changes no key.
            Ticket.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
            .select_related("departamento", "asignado")
            .filter(sla_proximo__lte=ahora, estado__in=ACTIVOS, sla_pausado_en__isnull=True)
            .order_by("sla_proximo")[: settings.SLA_BARRIDO_MAX]
        )
        if not tickets:
            return barrido
        levantados: dict[str, list[int]] = {}
        eventos, subidas, detalles = [], {}, []
        for ticket in tickets:
            for objetivo, cumplido, en_vence, en_aviso, avisado, incumplido in _CAMPOS_OBJETIVO:
                if getattr(ticket, cumplido):
                    continue
                vence, aviso = getattr(ticket, en_vence), getattr(ticket, en_aviso)
                if vence is not None and vence <= ahora and getattr(ticket, incumplido) is None:
                    evento, campos = Notificacion.Evento.SLA_INCUMPLIDO, [incumplido, avisado]
                    barrido.incumplidos += 1
                    if subir and ticket.prioridad in _SIGUIENTE_PRIORIDAD:
                        anterior = ticket.prioridad
                        ticket.prioridad = _SIGUIENTE_PRIORIDAD[anterior]
                        subidas[ticket.pk] = ticket.prioridad  # the last step wins
                        detalles.append(
                            DetalleTicket(
                                ticket=ticket,
                                tipo=DetalleTicket.Tipo.EVENTO,
                                texto=_nota_prioridad(anterior, ticket.prioridad, objetivo),
                            )
                        )
                        barrido.prioridades += 1
                elif aviso is not None and aviso <= ahora and getattr(ticket, avisado) is None:
                    evento, campos = Notificacion.Evento.SLA_AVISO, [avisado]
                    vence = vence or aviso
                    barrido.avisos += 1
                else:
                    continue
                for campo in campos:
                    if getattr(ticket, campo) is None:
                        setattr(ticket, campo, ahora)
                        levantados.setdefault(campo, []).append(ticket.pk)
                eventos.append(
                    {
                        "evento": evento,
                        "ticket": ticket,
                        "datos": {
                            "objetivo": objetivo,
                            "vence": vence.astimezone(zona).isoformat(),
                        },
                        "unico": f"{evento}:{ticket.pk}:{objetivo}",
                    }
                )
        if connection.vendor == "postgresql":
            _guardar_barrido(tickets, levantados, ahora)
        else:
            # A statement per kind of event raised and per new priority, then the next moment
            # of each ticket from what is now recorded.
            for campo, pks in levantados.items():
                Ticket.objects.filter(pk__in=pks).update(**{campo: ahora})
            por_prioridad: dict[str, list[int]] = {}
            for pk, prioridad in subidas.items():
                por_prioridad.setdefault(prioridad, []).append(pk)
            for prioridad, pks in por_prioridad.items():
                Ticket.objects.filter(pk__in=pks).update(prioridad=prioridad)
            Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(sla_proximo=_proximo_sql())
        if detalles:
            DetalleTicket.objects.bulk_create(detalles)
        notificar_lote(eventos)
    return barrido


# The moments the sweep records on a ticket as it raises an event.
_LEVANTADOS = [f"{k}_{o}_en" for k in ("avisado", "incumplido") for o in OBJETIVOS]
# The sweep's UPDATE on PostgreSQL, joined by id to one JSON record per ticket: the moments of
# the events raised now (absent: unchanged), its priority and its next moment.
_ACTUALIZAR = (  # noqa: S608 - fixed identifiers only
    "UPDATE {tabla} AS t SET {levantados}, prioridad = v.prioridad, sla_proximo = v.sla_proximo "
    "FROM json_to_recordset(%s::json) AS v(id bigint, {columnas}, prioridad text, "
    "sla_proximo timestamptz) WHERE t.id = v.id"
).format(
    tabla=Ticket._meta.db_table,
    levantados=", ".join(f"{c} = COALESCE(v.{c}, t.{c})" for c in _LEVANTADOS),
    columnas=", ".join(f"{c} timestamptz" for c in _LEVANTADOS),
)


def _guardar_barrido(tickets: list[Ticket], levantados: dict[str, list[int]], ahora) -> None:
    """PostgreSQL: what the sweep changed on its tickets, in one UPDATE joined by id to the new
    values, sent as one JSON document: the events raised at `ahora`, the priority, and the next
    moment computed here from the ticket as it now stands (`sla_proximo`; the tickets are
    locked). Each ticket gets one new row version, where a statement per change made up to
    three, and the values cost one parameter to send."""
    momento = ahora.isoformat()
    registros = {t.pk: {"id": t.pk, "prioridad": t.prioridad} for t in tickets}
    for campo, pks in levantados.items():
        for pk in pks:
            registros[pk][campo] = momento
    for ticket in tickets:
        ticket.sla_proximo = sla_proximo(ticket)
        proximo = ticket.sla_proximo
        registros[ticket.pk]["sla_proximo"] = proximo.isoformat() if proximo else None
    with connection.cursor() as cursor:
        cursor.execute(_ACTUALIZAR, [json.dumps(list(registros.values()))])


configuracion.conectar(PoliticaSLA, Calendario, Feriado)
