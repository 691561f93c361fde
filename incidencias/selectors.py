"""Reads of the ticket domain shared by the API, the pages and the admin."""

from datetime import datetime

from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import DetalleTicket, EstadoSLA, RespuestaPredefinida, Ticket


def ticket_buscar(*, texto: str, tickets: QuerySet[Ticket] | None = None) -> QuerySet[Ticket]:
    """Tickets whose subject, requester or any entry's text matches `texto`, newest first.

    PostgreSQL: full-text search in Spanish (web-search syntax: words, "phrases", -exclusions)
    over GIN-indexed vectors kept by triggers. Ordered by date, never by rank: ranking large
    match sets is what makes full-text search slow. SQLite: case-insensitive substring match.
    """
    tickets = Ticket.objects.all() if tickets is None else tickets
    texto = (texto or "").strip()[:200]
    if not texto:
        return tickets.none()
    if connection.vendor == "postgresql":
        query = SearchQuery(texto, config="spanish", search_type="websearch")
        en_detalles = DetalleTicket.objects.filter(ticket=OuterRef("pk"), busqueda=query)
        coincide = Q(busqueda=query) | Q(Exists(en_detalles))
    else:
        en_detalles = DetalleTicket.objects.filter(ticket=OuterRef("pk")).filter(
            Q(asunto__icontains=texto) | Q(texto__icontains=texto)
        )
        coincide = (
            Q(asunto__icontains=texto)
            | Q(solicitante_nombre__icontains=texto)
            | Q(solicitante_email__icontains=texto)
            | Q(Exists(en_detalles))
        )
    return tickets.filter(coincide).order_by("-creado", "-id")


ESTADOS_ABIERTOS = (Ticket.Estado.NUEVO, Ticket.Estado.ABIERTO, Ticket.Estado.EN_ESPERA)


def tickets_para_usuario(*, usuario) -> QuerySet[Ticket]:
    """The tickets `usuario` may see: staff see all; others their department's (agents and
    heads) and those assigned to them. An inactive user sees none."""
    if not getattr(usuario, "is_active", False):
        return Ticket.objects.none()
    if usuario.is_staff:
        return Ticket.objects.all()
    visible = Q(asignado_id=usuario.pk)
    if usuario.departamento_id and (usuario.acceso_ticket or usuario.jefe):
        visible |= Q(departamento_id=usuario.departamento_id)
    return Ticket.objects.filter(visible)


def tickets_sla(
    *,
    tickets: QuerySet[Ticket] | None = None,
    estado: str | None = None,
    ahora: datetime | None = None,
) -> QuerySet[Ticket]:
    """Tickets annotated with `estado_sla` (EstadoSLA), optionally only those in `estado`.

    Breached: a target unmet past its due date, or met late. At risk: an unmet target past its
    warning. Paused: waiting on the customer. Read at the moment the clock stopped for a
    stopped ticket, so it does not drift while it waits; computed from the dates, so it does
    not wait for the sweep. Dashboards: `tickets_sla(estado="en_riesgo")`, "incumplido"."""
    tickets = Ticket.objects.all() if tickets is None else tickets
    momento = Coalesce(F("sla_pausado_en"), Value(ahora or timezone.now()))
    incumplido = Q()
    en_riesgo = Q()
    for cumplido, objetivo in (
        ("primera_respuesta_en", "primera_respuesta"),
        ("resuelto_en", "resolucion"),
    ):
        vence, aviso = f"vence_{objetivo}", f"aviso_{objetivo}"
        incumplido |= Q(**{f"{cumplido}__isnull": True, f"{vence}__lte": momento})
        incumplido |= Q(**{f"{cumplido}__gt": F(vence)})
        en_riesgo |= Q(**{f"{cumplido}__isnull": True, f"{aviso}__lte": momento})
    tickets = tickets.annotate(
        estado_sla=Case(
            When(incumplido, then=Value(EstadoSLA.INCUMPLIDO)),
            When(estado=Ticket.Estado.EN_ESPERA, then=Value(EstadoSLA.PAUSADO)),
            When(en_riesgo, then=Value(EstadoSLA.EN_RIESGO)),
            default=Value(EstadoSLA.OK),
            output_field=CharField(),
        )
    )
    if estado:
        tickets = tickets.filter(estado_sla=estado)
    return tickets


def es_agente(usuario) -> bool:
    """Whether `usuario` works tickets (sees internal notes): active staff, agents, heads."""
    if not getattr(usuario, "is_active", False):
        return False
    return bool(usuario.is_staff or usuario.acceso_ticket or usuario.jefe)


def ticket_para_usuario(*, usuario, numero_o_pk, por_pk: bool = False) -> Ticket:
    """The ticket `usuario` may see, by its public number (pages and the API name tickets by
    it) or, with `por_pk`, by primary key. Raises Ticket.DoesNotExist outside
    `tickets_para_usuario` exactly as for a ticket that does not exist (a 404 either way)."""
    try:
        valor = int(numero_o_pk)
    except (TypeError, ValueError):
        raise Ticket.DoesNotExist from None
    if not -(2**63) <= valor < 2**63:
        raise Ticket.DoesNotExist
    campo = "pk" if por_pk else "numero"
    return (
        tickets_para_usuario(usuario=usuario)
        .select_related("departamento", "asignado")
        .get(**{campo: valor})
    )


def puede_trabajar(usuario, ticket: Ticket) -> bool:
    """Whether `usuario` may change the ticket (reply, note, assign, state, transfer, merge):
    agents and heads of its department, its assignee if they work tickets, and staff with the
    `incidencias.change_ticket` permission. Seeing a ticket (`tickets_para_usuario`) is not
    enough: staff without that permission only read."""
    if not getattr(usuario, "is_active", False):
        return False
    if usuario.is_staff and usuario.has_perm("incidencias.change_ticket"):
        return True
    if not (usuario.acceso_ticket or usuario.jefe):
        return False
    if ticket.asignado_id == usuario.pk:
        return True
    return bool(usuario.departamento_id) and ticket.departamento_id == usuario.departamento_id


def respuestas_predefinidas(*, ticket: Ticket) -> QuerySet[RespuestaPredefinida]:
    """The active canned responses offered on a ticket: its department's and the global ones."""
    return RespuestaPredefinida.objects.filter(
        Q(departamento__isnull=True) | Q(departamento_id=ticket.departamento_id), activa=True
    ).order_by("nombre", "id")
