"""SLA clocks: due dates counted in business minutes of a calendar."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import configuracion
from .models import Calendario, Feriado, PoliticaSLA, Ticket

_MAX_DAYS = 3 * 366


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


def sumar_minutos_habiles(
    inicio: datetime, minutos: int, calendario: Calendario, feriados: set[date] | None = None
) -> datetime:
    """The moment `minutos` business minutes after `inicio` in `calendario`.

    A calendar with no opening hours counts every minute (24/7).
    """
    if minutos <= 0:
        return inicio
    try:
        tz = ZoneInfo(calendario.zona_horaria)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    if not any(_spans(calendario, day) for day in range(7)):
        return inicio + timedelta(minutes=minutos)
    feriados = feriados or set()
    current = inicio.astimezone(tz)
    remaining = timedelta(minutes=minutos)
    for _ in range(_MAX_DAYS):
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


def sla_vencimientos(*, ticket: Ticket, desde: datetime) -> tuple[datetime, datetime] | None:
    """(first response due, resolution due) for the ticket's department and priority."""
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

    encontrada = configuracion.leer(("sla", ticket.departamento_id, ticket.prioridad), cargar)
    if encontrada is None:
        return None
    politica, feriados = encontrada
    calendario = politica.calendario
    return (
        sumar_minutos_habiles(desde, politica.primera_respuesta_min, calendario, feriados),
        sumar_minutos_habiles(desde, politica.resolucion_min, calendario, feriados),
    )


configuracion.conectar(PoliticaSLA, Calendario, Feriado)
