"""Reads of the ticket domain shared by the API, the pages and the admin."""

import functools
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.postgres.search import SearchQuery
from django.core import signing
from django.core.exceptions import BadRequest
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    Adjunto,
    DetalleTicket,
    EstadoSLA,
    FiltroGuardado,
    Prioridad,
    RespuestaPredefinida,
    Ticket,
)


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


def alcance_tickets(*, usuario, prefijo: str = "") -> Q | None:
    """The condition on tickets `usuario` may see (None: every ticket), for a query on tickets
    or, with `prefijo` ("ticket__"), on rows that point at one. Staff see all; others their
    department's (agents and heads) and those assigned to them; an inactive user none."""
    if not getattr(usuario, "is_active", False):
        return Q(pk__in=[])
    if usuario.is_staff:
        return None
    visible = Q(**{f"{prefijo}asignado_id": usuario.pk})
    departamento = departamento_visible(usuario)
    if departamento:
        visible |= Q(**{f"{prefijo}departamento_id": departamento})
    return visible


def departamento_visible(usuario) -> int | None:
    """The department whose every ticket `usuario` sees as its agent or head (staff: their own)."""
    if usuario.departamento_id and (usuario.acceso_ticket or usuario.jefe or usuario.is_staff):
        return usuario.departamento_id
    return None


def tickets_para_usuario(*, usuario) -> QuerySet[Ticket]:
    """The tickets `usuario` may see (`alcance_tickets`)."""
    alcance = alcance_tickets(usuario=usuario)
    return Ticket.objects.all() if alcance is None else Ticket.objects.filter(alcance)


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


# --- The agents' queue --------------------------------------------------------------------


class CursorInvalido(BadRequest):
    """A page cursor that was not made by `cola` for this order (edited, truncated, stale)."""


class FiltroInvalido(BadRequest):
    """A queue filter with a value the queue does not know."""


ORDENES = FiltroGuardado.Orden
_RANGO_PRIORIDAD = Case(
    *(When(prioridad=p, then=Value(i)) for i, p in enumerate(Prioridad.values)),
    default=Value(-1),
    output_field=IntegerField(),
)
# Per order: the keyset's keys, each (field or annotation, descending?); the last is the id.
_CLAVES = {
    ORDENES.SLA: (("orden_sla", False), ("id", False)),
    ORDENES.CREADO_DESC: (("creado", True), ("id", True)),
    ORDENES.CREADO: (("creado", False), ("id", False)),
    ORDENES.PRIORIDAD: (("rango_prioridad", True), ("orden_sla", False), ("id", False)),
    ORDENES.ACTUALIZADO_DESC: (("actualizado", True), ("id", True)),
}
_SAL_CURSOR = "incidencias.selectors.cola"
LIMITE_MAXIMO = 200
ASIGNADO_NADIE, ASIGNADO_YO = "unassigned", "me"


@dataclass
class PaginaCola:
    """One page of the queue: `filas` are Tickets with `departamento` and `asignado` loaded and
    annotated with `estado_sla`, `ultima_actividad` and `mensajes` (entries that are not system
    events). `siguiente`/`anterior` are cursors for `cola(despues=...)`, None at either end."""

    filas: list[Ticket]
    siguiente: str | None
    anterior: str | None
    orden: str


def _despues_de(claves, valores, *, atras: bool) -> Q:
    """Rows strictly after `valores` in the order of `claves` (before it, `atras`).

    Written as `k1 >= v1 AND (k1 > v1 OR <the rest after>)`: the first comparison bounds an
    index range, the rest only sorts out the ties."""
    (campo, desc), *resto = claves
    valor = valores[0]
    hacia_abajo = desc != atras
    estricto = Q(**{f"{campo}__{'lt' if hacia_abajo else 'gt'}": valor})
    if not resto:
        return estricto
    desde = Q(**{f"{campo}__{'lte' if hacia_abajo else 'gte'}": valor})
    return desde & (estricto | _despues_de(resto, valores[1:], atras=atras))


def _cursor(orden: str, fila: Ticket, *, atras: bool) -> str:
    valores = []
    for campo, _desc in _CLAVES[orden]:
        valor = getattr(fila, campo)
        valores.append(valor.isoformat() if isinstance(valor, datetime) else valor)
    return signing.dumps({"o": orden, "v": valores, "a": atras}, salt=_SAL_CURSOR)


def _leer_cursor(cursor: str, orden: str) -> tuple[list, bool]:
    """The keyset values and direction of a cursor made by `_cursor` for `orden`."""
    try:
        datos = signing.loads(str(cursor), salt=_SAL_CURSOR)
        if datos["o"] != orden or len(datos["v"]) != len(_CLAVES[orden]):
            raise ValueError("another order's cursor")
        valores = []
        for (campo, _desc), valor in zip(_CLAVES[orden], datos["v"], strict=True):
            if campo in ("id", "rango_prioridad"):
                if type(valor) is not int:
                    raise ValueError(campo)
            else:
                valor = datetime.fromisoformat(valor)
                if valor.tzinfo is None:
                    raise ValueError(campo)
            valores.append(valor)
        return valores, bool(datos["a"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise CursorInvalido(
            _("This page link is not valid any more; start from the first page.")
        ) from exc


def _valores(nombre: str, valor, permitidos) -> list[str] | None:
    if valor in (None, "", [], ()):
        return None
    valores = [valor] if isinstance(valor, str) else list(valor)
    for v in valores:
        if v not in permitidos:
            raise FiltroInvalido(
                _("Unknown %(filtro)s: %(valor)s") % {"filtro": nombre, "valor": v}
            )
    return valores


def _entero(nombre: str, valor) -> int:
    try:
        return int(valor)
    except (TypeError, ValueError):
        raise FiltroInvalido(
            _("Unknown %(filtro)s: %(valor)s") % {"filtro": nombre, "valor": valor}
        ) from None


def cola(
    *,
    usuario,
    departamento_id=None,
    estado=None,
    prioridad=None,
    asignado_id=None,
    sla: str | None = None,
    canal=None,
    texto: str = "",
    orden: str = ORDENES.SLA,
    despues: str | None = None,
    limite: int = 50,
    ahora: datetime | None = None,
) -> PaginaCola:
    """A page of the tickets `usuario` may see, filtered and sorted, with keyset pagination.

    Filters: `departamento_id`; `estado`, `prioridad`, `canal` (a value or a list); `asignado_id`
    (a user id, "unassigned" or "me"); `sla` (an EstadoSLA); `texto` (`ticket_buscar`). Orders:
    `FiltroGuardado.Orden` ("sla": the pending due date, nothing pending last). `despues` is a
    page's `siguiente` or `anterior` cursor (CursorInvalido, a 400, when it is not one of ours
    for this order); FiltroInvalido (a 400) for an unknown filter value.

    One statement whatever `limite` (the row's department, assignee, SLA state, last activity
    and message count come in it); none when the user may see nothing. A department's queue in
    SLA order reads the index (departamento_id, orden_sla, id) from the cursor on.
    """
    if orden not in _CLAVES:
        raise FiltroInvalido(
            _("Unknown %(filtro)s: %(valor)s") % {"filtro": "orden", "valor": orden}
        )
    limite = max(1, min(int(limite), LIMITE_MAXIMO))
    filtro = Q()
    if departamento_id not in (None, ""):
        departamento_id = _entero("departamento", departamento_id)
        filtro &= Q(departamento_id=departamento_id)
    if (estados := _valores("estado", estado, Ticket.Estado.values)) is not None:
        filtro &= Q(estado__in=estados)
    if (prioridades := _valores("prioridad", prioridad, Prioridad.values)) is not None:
        filtro &= Q(prioridad__in=prioridades)
    if (canales := _valores("canal", canal, Ticket.Canal.values)) is not None:
        filtro &= Q(canal__in=canales)
    if asignado_id == ASIGNADO_YO:
        asignado_id = usuario.pk
    if asignado_id == ASIGNADO_NADIE:
        filtro &= Q(asignado__isnull=True)
    elif asignado_id not in (None, ""):
        asignado_id = _entero("asignado", asignado_id)
        filtro &= Q(asignado_id=asignado_id)
    if sla not in (None, ""):
        _valores("sla", sla, EstadoSLA.values)

    # The user's scope, left out where the filters already imply it, so that a department's
    # queue is one index range and not an OR over two indexes.
    alcance = alcance_tickets(usuario=usuario)
    implicito = asignado_id == usuario.pk or (
        departamento_id is not None and departamento_id == departamento_visible(usuario)
    )
    if alcance is not None and implicito and getattr(usuario, "is_active", False):
        alcance = None
    tickets = _filas_cola().filter(filtro)
    if alcance is not None:
        tickets = tickets.filter(alcance)
    if texto and texto.strip():
        tickets = ticket_buscar(texto=texto, tickets=tickets)
    tickets = tickets_sla(tickets=tickets, estado=sla or None, ahora=ahora)

    claves = _CLAVES[orden]
    if orden == ORDENES.PRIORIDAD:
        tickets = tickets.annotate(rango_prioridad=_RANGO_PRIORIDAD)
    atras = False
    if despues:
        valores, atras = _leer_cursor(despues, orden)
        tickets = tickets.filter(_despues_de(claves, valores, atras=atras))
    tickets = tickets.order_by(*(("-" if desc != atras else "") + campo for campo, desc in claves))
    filas = list(tickets[: limite + 1])
    hay_mas = len(filas) > limite
    filas = filas[:limite]
    if atras:
        filas.reverse()
        siguiente = _cursor(orden, filas[-1], atras=False) if filas else None
        anterior = _cursor(orden, filas[0], atras=True) if hay_mas else None
    else:
        siguiente = _cursor(orden, filas[-1], atras=False) if hay_mas else None
        anterior = _cursor(orden, filas[0], atras=True) if despues and filas else None
    return PaginaCola(filas=filas, siguiente=siguiente, anterior=anterior, orden=orden)


@functools.cache
def _base_cola() -> QuerySet[Ticket]:
    entradas = DetalleTicket.objects.filter(ticket=OuterRef("pk")).values("ticket")
    return (
        Ticket.objects.select_related("departamento", "asignado")
        .only(*_CAMPOS_FILA)
        .annotate(
            ultima_actividad=Coalesce(
                Subquery(entradas.annotate(m=Max("creado")).values("m")), F("creado")
            ),
            mensajes=Coalesce(
                Subquery(
                    entradas.exclude(tipo=DetalleTicket.Tipo.EVENTO)
                    .annotate(n=Count("id"))
                    .values("n")
                ),
                Value(0),
            ),
        )
    )


def _filas_cola() -> QuerySet[Ticket]:
    """The queue's rows before any filter: their columns, department and assignee, last
    activity and message count. Built once (resolving the subqueries is a good part of a
    queue page's Python time); each call gets a clone, never the evaluated original."""
    return _base_cola().all()


# What a queue row shows, and all that its statement reads: the ticket's columns below, the
# department's name and the assignee's names (`estado_sla`, `ultima_actividad`, `mensajes` are
# computed in the statement). Any other field read from a row costs one more query per row
# (the tests count them): add it here instead.
_CAMPOS_FILA = [
    "id",
    "numero",
    "asunto",
    "estado",
    "prioridad",
    "canal",
    "departamento",
    "asignado",
    "solicitante_nombre",
    "solicitante_email",
    "creado",
    "actualizado",
    "orden_sla",
    "departamento__nombre",
    "asignado__username",
    "asignado__nombre",
    "asignado__email",
]


def cola_filtros(consulta) -> dict:
    """The `cola` keyword arguments of a queue's query string (a str or a QueryDict):
    departamento, estado (repeated), prioridad (repeated), asignado, sla, canal (repeated), q,
    orden. Unknown keys are ignored; unknown values raise FiltroInvalido."""
    if isinstance(consulta, str):
        consulta = QueryDict(consulta)
    filtros = {
        "departamento_id": consulta.get("departamento") or None,
        "estado": consulta.getlist("estado") or None,
        "prioridad": consulta.getlist("prioridad") or None,
        "asignado_id": consulta.get("asignado") or None,
        "sla": consulta.get("sla") or None,
        "canal": consulta.getlist("canal") or None,
        "texto": (consulta.get("q") or "")[:200],
        "orden": consulta.get("orden") or ORDENES.SLA,
    }
    if filtros["departamento_id"] is not None:
        filtros["departamento_id"] = _entero("departamento", filtros["departamento_id"])
    for nombre, permitidos in (
        ("estado", Ticket.Estado.values),
        ("prioridad", Prioridad.values),
        ("canal", Ticket.Canal.values),
    ):
        _valores(nombre, filtros[nombre], permitidos)
    if filtros["asignado_id"] not in (None, ASIGNADO_NADIE, ASIGNADO_YO):
        filtros["asignado_id"] = _entero("asignado", filtros["asignado_id"])
    _valores("sla", filtros["sla"], EstadoSLA.values)
    if filtros["orden"] not in _CLAVES:
        raise FiltroInvalido(
            _("Unknown %(filtro)s: %(valor)s") % {"filtro": "orden", "valor": filtros["orden"]}
        )
    return filtros


def filtros_guardados(*, usuario) -> QuerySet[FiltroGuardado]:
    return FiltroGuardado.objects.filter(usuario=usuario).order_by("nombre")


# --- A ticket's thread -----------------------------------------------------------------------


def hilo(*, ticket: Ticket, incluir_notas: bool = True) -> list[DetalleTicket]:
    """The ticket's entries in order (`tipo` tells mail in, our replies, notes and events
    apart), each with its author and, in `lista_adjuntos`, its attachments in order: two
    statements whatever the length of the thread (one when it is empty). Read: every column of
    an entry but the ones a thread never shows (`_NO_EN_HILO`), and the author's names.

    The attachments are read in one statement and handed out by entry here, not through
    `prefetch_related`, which builds a related queryset for every entry (most of this
    function's time on a long thread); `entrada.adjuntos.all()` would query again."""
    entradas = DetalleTicket.objects.filter(ticket_id=ticket.pk)
    if not incluir_notas:
        entradas = entradas.exclude(tipo=DetalleTicket.Tipo.NOTA)
    entradas = list(entradas.select_related("autor").only(*_CAMPOS_HILO).order_by("creado", "id"))
    por_entrada: dict[int, list[Adjunto]] = {}
    if entradas:
        adjuntos = Adjunto.objects.filter(detalle_id__in=[e.pk for e in entradas]).order_by("id")
        for adjunto in adjuntos:
            por_entrada.setdefault(adjunto.detalle_id, []).append(adjunto)
    for entrada in entradas:
        entrada.lista_adjuntos = por_entrada.get(entrada.pk, [])
    return entradas


# Kept for threading and search, never shown in a thread: left out of its statement.
_NO_EN_HILO = {"busqueda", "headers", "references", "in_reply_to", "clave_dedup"}
_CAMPOS_HILO = [
    *(f.name for f in DetalleTicket._meta.concrete_fields if f.name not in _NO_EN_HILO),
    "autor__username",
    "autor__nombre",
    "autor__email",
]


# --- The dashboard ---------------------------------------------------------------------------


@dataclass
class Tablero:
    """The dashboard's figures. `cola_por_estado`: open state -> tickets of the department
    (`departamento_id`, None: the user has none); SLA counts: the open tickets of the department
    and those assigned to the user; today's counts: every ticket the user may see, from
    midnight in the site's time zone; `actividad`: the latest entries on tickets the user may
    see, newest first."""

    departamento_id: int | None
    mis_abiertos: int = 0
    cola_por_estado: dict[str, int] = field(default_factory=dict)
    sla_en_riesgo: int = 0
    sla_incumplido: int = 0
    nuevos_hoy: int = 0
    resueltos_hoy: int = 0
    actividad: list[DetalleTicket] = field(default_factory=list)


def tablero(*, usuario, actividad: int = 10, ahora: datetime | None = None) -> Tablero:
    """The dashboard of `usuario` in three statements (none for a user who may see nothing):

    1. the open tickets of the department and the user's: indexes ticket_dep_estado and
       ticket_asignado_estado (states nuevo/abierto/en_espera only, never the solved mass);
    2. today's new and solved: index ranges on `creado` and `ticket_resuelto_en` (every
       ticket of today, the user's scope applied in the counts);
    3. the latest entries: the entries' primary key read backwards until `actividad` visible
       ones are found.
    """
    ahora = ahora or timezone.now()
    departamento = departamento_visible(usuario)
    resultado = Tablero(
        departamento_id=departamento,
        cola_por_estado=dict.fromkeys(ESTADOS_ABIERTOS, 0),
    )
    alcance = alcance_tickets(usuario=usuario)
    if alcance is not None and not getattr(usuario, "is_active", False):
        return resultado

    propios = Q(asignado_id=usuario.pk)
    if departamento:
        propios |= Q(departamento_id=departamento)
    elif usuario.is_staff:
        propios = Q()  # staff without a department: every open ticket is their queue
    de_la_cola = Q(departamento_id=departamento) if departamento else Q()
    abiertos = tickets_sla(
        tickets=Ticket.objects.filter(propios, estado__in=ESTADOS_ABIERTOS), ahora=ahora
    )
    cuentas = abiertos.aggregate(
        mis_abiertos=Count("pk", filter=Q(asignado_id=usuario.pk)),
        sla_en_riesgo=Count("pk", filter=Q(estado_sla=EstadoSLA.EN_RIESGO)),
        sla_incumplido=Count("pk", filter=Q(estado_sla=EstadoSLA.INCUMPLIDO)),
        **{f"estado_{e}": Count("pk", filter=de_la_cola & Q(estado=e)) for e in ESTADOS_ABIERTOS},
    )
    resultado.mis_abiertos = cuentas["mis_abiertos"]
    resultado.sla_en_riesgo = cuentas["sla_en_riesgo"]
    resultado.sla_incumplido = cuentas["sla_incumplido"]
    if departamento or usuario.is_staff:
        resultado.cola_por_estado = {e: cuentas[f"estado_{e}"] for e in ESTADOS_ABIERTOS}

    zona = ZoneInfo(settings.TIME_ZONE)
    medianoche = datetime.combine(ahora.astimezone(zona).date(), time(0), zona)
    # The scope goes in the counts' FILTER, not in WHERE: today's rows are few, and a scope in
    # WHERE would have PostgreSQL read the department's whole index into a bitmap to AND them.
    hoy = Ticket.objects.filter(Q(creado__gte=medianoche) | Q(resuelto_en__gte=medianoche))
    visible = alcance if alcance is not None else Q()
    cuentas = hoy.aggregate(
        nuevos=Count("pk", filter=Q(creado__gte=medianoche) & visible),
        resueltos=Count("pk", filter=Q(resuelto_en__gte=medianoche) & visible),
    )
    resultado.nuevos_hoy, resultado.resueltos_hoy = cuentas["nuevos"], cuentas["resueltos"]

    entradas = DetalleTicket.objects.all()
    alcance_entradas = alcance_tickets(usuario=usuario, prefijo="ticket__")
    if alcance_entradas is not None:
        entradas = entradas.filter(alcance_entradas)
    resultado.actividad = list(
        entradas.select_related("ticket", "autor")
        .only(
            "id",
            "tipo",
            "automatico",
            "creado",
            "fecha",
            "de",
            "asunto",
            "ticket_id",
            "autor_id",
            "ticket__numero",
            "ticket__asunto",
            "ticket__estado",
            "autor__username",
            "autor__nombre",
        )
        .order_by("-id")[:actividad]
    )
    return resultado


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
