"""The reads behind the agents' portal: the queue (`cola`), a ticket's thread (`hilo`), the
dashboard (`tablero`) and saved queue filters.

Personas: Ana works Soporte's tickets, Jefa heads Soporte, Beto works Redes' tickets, Sara is
staff, Olga has an account but works no tickets, and Iván's account is disabled.
"""

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import BadRequest, ValidationError
from django.core.signing import dumps
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import path

from incidencias.models import Adjunto, DetalleTicket, EstadoSLA, FiltroGuardado, Ticket
from incidencias.selectors import (
    CursorInvalido,
    FiltroInvalido,
    cola,
    cola_filtros,
    filtros_guardados,
    hilo,
    tablero,
    tickets_para_usuario,
)
from incidencias.services import filtro_borrar, filtro_guardar
from sso.models import Usuario

CR = ZoneInfo("America/Costa_Rica")
AHORA = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 09:00 in Costa Rica
_numeros = itertools.count(5000)


def persona(username, departamento=None, **campos) -> Usuario:
    return Usuario.objects.create_user(
        username=username,
        email=f"{username}@example.com",
        password="x",
        departamento=departamento,
        nombre=username.capitalize(),
        **campos,
    )


@pytest.fixture
def gente(soporte, redes):
    return {
        "ana": persona("ana", soporte, acceso_ticket=True),
        "jefa": persona("jefa", soporte, jefe=True),
        "beto": persona("beto", redes, acceso_ticket=True),
        "sara": persona("sara", is_staff=True),
        "olga": persona("olga", soporte),
        "ivan": persona("ivan", soporte, acceso_ticket=True, is_active=False),
    }


def ticket(departamento, asignado=None, **campos) -> Ticket:
    campos.setdefault("asunto", "Sin conexión")
    return Ticket.objects.create(
        numero=next(_numeros), departamento=departamento, asignado=asignado, **campos
    )


def entrada(t, tipo=DetalleTicket.Tipo.ENTRANTE, autor=None, texto="hola") -> DetalleTicket:
    return DetalleTicket.objects.create(ticket=t, tipo=tipo, autor=autor, texto=texto)


def todas_las_paginas(limite=3, **filtros) -> list[int]:
    ids, despues = [], None
    for _pagina in range(100):
        pagina = cola(limite=limite, despues=despues, ahora=AHORA, **filtros)
        ids += [t.pk for t in pagina.filas]
        if pagina.siguiente is None:
            return ids
        despues = pagina.siguiente
    raise AssertionError("the pages never end")


# --- Who sees what ---------------------------------------------------------------------------


def test_it_shows_each_persona_only_the_tickets_they_may_see(gente, soporte, redes):
    de_soporte = ticket(soporte)
    de_redes = ticket(redes)
    de_redes_para_ana = ticket(redes, gente["ana"])
    sin_departamento = ticket(None)
    esperado = {
        "ana": {de_soporte.pk, de_redes_para_ana.pk},
        "jefa": {de_soporte.pk},
        "beto": {de_redes.pk, de_redes_para_ana.pk},
        "sara": {de_soporte.pk, de_redes.pk, de_redes_para_ana.pk, sin_departamento.pk},
        "olga": set(),
        "ivan": set(),
    }
    for nombre, visibles in esperado.items():
        usuario = gente[nombre]
        assert {t.pk for t in cola(usuario=usuario).filas} == visibles, nombre
        assert set(tickets_para_usuario(usuario=usuario).values_list("pk", flat=True)) == visibles


def test_it_keeps_the_scope_when_filtering_by_another_department(gente, soporte, redes):
    ticket(redes)
    para_ana = ticket(redes, gente["ana"])
    de_soporte = ticket(soporte)
    assert [t.pk for t in cola(usuario=gente["ana"], departamento_id=redes.pk).filas] == [
        para_ana.pk
    ]
    assert [t.pk for t in cola(usuario=gente["ana"], departamento_id=soporte.pk).filas] == [
        de_soporte.pk
    ]
    assert cola(usuario=gente["olga"], departamento_id=soporte.pk).filas == []
    assert cola(usuario=gente["beto"], departamento_id=soporte.pk, asignado_id="me").filas == []


def test_it_reads_nothing_for_a_user_who_may_see_nothing(gente, soporte, django_assert_num_queries):
    ticket(soporte)
    with django_assert_num_queries(0):
        assert cola(usuario=gente["ivan"]).filas == []


# --- One statement per page ------------------------------------------------------------------


def _leer_filas(pagina):
    """Everything a queue row shows."""
    return [
        (
            t.numero,
            t.asunto,
            t.get_estado_display(),
            t.get_prioridad_display(),
            t.departamento.nombre if t.departamento else "",
            str(t.asignado) if t.asignado else "",
            t.estado_sla,
            t.vence_sla,
            t.ultima_actividad,
            t.mensajes,
            t.solicitante_email,
            t.actualizado,
        )
        for t in pagina.filas
    ]


@pytest.mark.parametrize("orden", list(FiltroGuardado.Orden.values))
def test_it_loads_a_page_in_one_statement_whatever_its_size(
    gente, soporte, django_assert_num_queries, orden
):
    uno = ticket(soporte, gente["ana"])
    entrada(uno)
    with django_assert_num_queries(1):
        pagina = cola(usuario=gente["jefa"], orden=orden, limite=50)
        assert len(_leer_filas(pagina)) == 1
    for i in range(40):
        t = ticket(soporte, gente["ana"] if i % 2 else None, prioridad="alta" if i % 3 else "baja")
        entrada(t)
        entrada(t, DetalleTicket.Tipo.RESPUESTA, gente["ana"])
        entrada(t, DetalleTicket.Tipo.EVENTO)
    with django_assert_num_queries(1):
        pagina = cola(usuario=gente["jefa"], orden=orden, limite=50)
        filas = _leer_filas(pagina)
    assert len(filas) == 41
    una = next(t for t in pagina.filas if t.pk != uno.pk)
    assert una.mensajes == 2  # the system event is not a message
    assert una.ultima_actividad == una.detalles.order_by("-creado").first().creado


def test_it_sorts_by_the_pending_due_date_with_nothing_pending_last(gente, soporte):
    hora = AHORA + timedelta(hours=1)
    pendiente_respuesta = ticket(
        soporte, vence_primera_respuesta=hora + timedelta(hours=3), vence_resolucion=hora
    )
    respondido = ticket(
        soporte,
        primera_respuesta_en=AHORA,
        vence_primera_respuesta=hora - timedelta(hours=9),
        vence_resolucion=hora + timedelta(hours=1),
    )
    vencido = ticket(soporte, vence_primera_respuesta=hora - timedelta(hours=2))
    sin_politica = ticket(soporte)
    resuelto = ticket(
        soporte,
        estado=Ticket.Estado.RESUELTO,
        resuelto_en=AHORA,
        vence_primera_respuesta=hora - timedelta(hours=5),
    )
    filas = cola(usuario=gente["jefa"], ahora=AHORA).filas
    assert [t.pk for t in filas] == [
        vencido.pk,
        respondido.pk,
        pendiente_respuesta.pk,
        sin_politica.pk,
        resuelto.pk,
    ]
    assert filas[0].vence_sla == vencido.vence_primera_respuesta
    assert filas[1].vence_sla == respondido.vence_resolucion
    assert filas[0].estado_sla == EstadoSLA.INCUMPLIDO
    assert filas[3].vence_sla is None and filas[4].vence_sla is None


# --- Keyset pagination -----------------------------------------------------------------------


@pytest.fixture
def muchos(gente, soporte):
    """23 tickets whose sort keys tie in groups, some with nothing pending."""
    base = AHORA.replace(microsecond=0)
    tickets = []
    for i in range(23):
        tickets.append(
            ticket(
                soporte,
                gente["ana"] if i % 2 else None,
                prioridad=["baja", "normal", "alta", "urgente"][i % 4],
                vence_primera_respuesta=None if i % 5 == 0 else base + timedelta(hours=i % 3),
            )
        )
    # Ties on the creation and update dates too.
    Ticket.objects.filter(pk__in=[t.pk for t in tickets[:10]]).update(creado=base, actualizado=base)
    return tickets


@pytest.mark.parametrize("orden", list(FiltroGuardado.Orden.values))
def test_it_pages_through_every_ticket_once_in_order(gente, muchos, orden):
    completo = [t.pk for t in cola(usuario=gente["jefa"], orden=orden, limite=200).filas]
    assert sorted(completo) == sorted(t.pk for t in muchos)
    for limite in (1, 4, 7, 23):
        assert todas_las_paginas(usuario=gente["jefa"], orden=orden, limite=limite) == completo


@pytest.mark.parametrize("orden", list(FiltroGuardado.Orden.values))
def test_it_pages_back_to_the_first_page(gente, muchos, orden):
    completo = [t.pk for t in cola(usuario=gente["jefa"], orden=orden, limite=200).filas]
    paginas, despues = [], None
    while True:
        pagina = cola(usuario=gente["jefa"], orden=orden, limite=5, despues=despues)
        paginas.append([t.pk for t in pagina.filas])
        if not pagina.siguiente:
            break
        despues = pagina.siguiente
    assert paginas[0] and cola(usuario=gente["jefa"], orden=orden, limite=5).anterior is None
    atras = []
    while pagina.anterior:
        pagina = cola(usuario=gente["jefa"], orden=orden, limite=5, despues=pagina.anterior)
        atras.insert(0, [t.pk for t in pagina.filas])
    assert atras == paginas[:-1]
    assert list(itertools.chain(*atras, paginas[-1])) == completo
    assert pagina.siguiente  # the first page, reached backwards, still leads forward


def test_it_pages_a_filtered_queue_with_its_scope(gente, muchos, soporte):
    mios = [t.pk for t in muchos if t.asignado_id == gente["ana"].pk]
    assert sorted(todas_las_paginas(usuario=gente["ana"], asignado_id="me", limite=2)) == mios
    assert sorted(todas_las_paginas(usuario=gente["jefa"], asignado_id=gente["ana"].pk)) == mios
    libres = [t.pk for t in muchos if t.asignado_id is None]
    assert sorted(todas_las_paginas(usuario=gente["ana"], asignado_id="unassigned")) == libres


# --- Bad cursors and filters -----------------------------------------------------------------


def test_it_refuses_a_cursor_it_did_not_make_as_a_bad_request(gente, muchos):
    buena = cola(usuario=gente["jefa"], limite=2).siguiente
    malas = [
        "nonsense",
        buena[:-3] + ("AAA" if not buena.endswith("AAA") else "BBB"),
        buena.replace(":", "x", 1),
        dumps({"o": "sla", "v": ["x", 1], "a": False}),  # signed, but not for the queue
        dumps({"o": "sla", "v": ["x", 1], "a": False}, salt="incidencias.selectors.cola"),
        dumps(
            {"o": "sla", "v": ["2026-01-01T00:00", 1], "a": 0}, salt="incidencias.selectors.cola"
        ),
        dumps({"o": "sla", "v": [None, 1]}, salt="incidencias.selectors.cola"),
        dumps({"o": "sla", "v": ["2026-01-01", "1"], "a": False}, salt="x"),
        cola(usuario=gente["jefa"], orden="-creado", limite=2).siguiente,  # another order's
    ]
    for mala in malas:
        with pytest.raises(CursorInvalido):
            cola(usuario=gente["jefa"], despues=mala)
    assert issubclass(CursorInvalido, BadRequest)


def vista_cola(request):
    """A page calling the queue as the portal's pages do."""
    pagina = cola(usuario=request.user, **cola_filtros(request.GET), despues=request.GET.get("c"))
    return HttpResponse(str(len(pagina.filas)))


urlpatterns = [path("cola/", vista_cola)]


@pytest.mark.urls(__name__)
def test_a_bad_cursor_or_filter_is_a_400_not_a_500(gente, muchos):
    cliente = Client(raise_request_exception=False)
    cliente.force_login(gente["jefa"])
    assert cliente.get("/cola/").content == b"23"
    assert cliente.get("/cola/", {"c": "garbage"}).status_code == 400
    assert cliente.get("/cola/", {"estado": "perdido"}).status_code == 400
    assert cliente.get("/cola/", {"departamento": "uno"}).status_code == 400
    assert cliente.get("/cola/", {"orden": "azar"}).status_code == 400


def test_it_filters_by_each_field(gente, soporte, redes):
    ana = gente["ana"]
    correo = ticket(soporte, ana, prioridad="alta", asunto="Impresora sin tóner")
    chat = ticket(soporte, None, canal=Ticket.Canal.CHAT, estado=Ticket.Estado.ABIERTO)
    vencido = ticket(soporte, None, vence_primera_respuesta=AHORA - timedelta(hours=1))
    sara = gente["sara"]

    def pks(**filtros):
        return {t.pk for t in cola(usuario=sara, ahora=AHORA, **filtros).filas}

    assert pks(prioridad="alta") == {correo.pk}
    assert pks(prioridad=["alta", "normal"]) == {correo.pk, chat.pk, vencido.pk}
    assert pks(canal="chat") == {chat.pk}
    assert pks(estado=["abierto"]) == {chat.pk}
    assert pks(asignado_id=ana.pk) == {correo.pk}
    assert pks(asignado_id=str(ana.pk)) == {correo.pk}
    assert pks(asignado_id="unassigned") == {chat.pk, vencido.pk}
    assert pks(sla=EstadoSLA.INCUMPLIDO) == {vencido.pk}
    assert pks(texto="impresora") == {correo.pk}
    assert pks(departamento_id=redes.pk) == set()
    for malo in (
        {"estado": "perdido"},
        {"prioridad": ["alta", "altisima"]},
        {"canal": "fax"},
        {"sla": "tarde"},
        {"asignado_id": "alguien"},
        {"departamento_id": "uno"},
        {"orden": "azar"},
    ):
        with pytest.raises(FiltroInvalido):
            cola(usuario=sara, **malo)


def test_it_reads_the_filters_of_a_query_string(gente, soporte):
    filtros = cola_filtros(
        f"departamento={soporte.pk}&estado=nuevo&estado=abierto&asignado=me&sla=en_riesgo"
        "&canal=correo&q=red&orden=-creado&otra=cosa"
    )
    assert filtros == {
        "departamento_id": soporte.pk,
        "estado": ["nuevo", "abierto"],
        "prioridad": None,
        "asignado_id": "me",
        "sla": "en_riesgo",
        "canal": ["correo"],
        "texto": "red",
        "orden": "-creado",
    }
    assert cola(usuario=gente["ana"], **filtros).filas == []
    for malo in ("estado=x", "orden=x", "asignado=x", "departamento=x", "sla=x"):
        with pytest.raises(FiltroInvalido):
            cola_filtros(malo)


# --- The thread ------------------------------------------------------------------------------


def _adjunto(detalle, nombre):
    return Adjunto.objects.create(
        detalle=detalle, nombre=nombre, tamano=3, sha256="0" * 64, archivo=f"adjuntos/00/{nombre}"
    )


def test_it_reads_the_thread_in_order_in_two_statements(gente, soporte, django_assert_num_queries):
    t = ticket(soporte)
    primero = entrada(t, texto="No tengo red")
    _adjunto(primero, "captura.png")
    with django_assert_num_queries(2):
        entradas = hilo(ticket=t)
        assert [(e.texto, e.autor, [a.nombre for a in e.lista_adjuntos]) for e in entradas] == [
            ("No tengo red", None, ["captura.png"])
        ]
    tipos = [DetalleTicket.Tipo.RESPUESTA, DetalleTicket.Tipo.NOTA, DetalleTicket.Tipo.EVENTO]
    for i in range(30):
        e = entrada(t, tipos[i % 3], gente["ana"], texto=f"paso {i}")
        _adjunto(e, f"a{i}.txt")
        _adjunto(e, f"b{i}.txt")
    with django_assert_num_queries(2):
        entradas = hilo(ticket=t)
        vistos = [
            (e.tipo, e.get_tipo_display(), str(e.autor) if e.autor else "", len(e.lista_adjuntos))
            for e in entradas
        ]
    assert len(vistos) == 31
    assert [e.pk for e in entradas] == sorted(e.pk for e in entradas)
    assert vistos[1] == ("respuesta", str(DetalleTicket.Tipo.RESPUESTA.label), "Ana", 2)
    assert [a.nombre for a in entradas[1].lista_adjuntos] == ["a0.txt", "b0.txt"]
    assert [a.detalle_id for a in entradas[1].lista_adjuntos] == [entradas[1].pk] * 2
    assert entradas[2].lista_adjuntos[0].nombre == "a1.txt"


def test_it_leaves_internal_notes_out_when_asked(gente, soporte):
    t = ticket(soporte)
    entrada(t)
    entrada(t, DetalleTicket.Tipo.NOTA, gente["ana"])
    entrada(t, DetalleTicket.Tipo.RESPUESTA, gente["ana"])
    assert [e.tipo for e in hilo(ticket=t, incluir_notas=False)] == ["entrante", "respuesta"]
    assert hilo(ticket=ticket(soporte)) == []


# --- The dashboard ---------------------------------------------------------------------------


def test_it_counts_the_dashboard_in_three_statements(
    gente, soporte, redes, django_assert_num_queries
):
    ana, jefa = gente["ana"], gente["jefa"]
    ayer_tarde = datetime(2026, 3, 9, 23, 30, tzinfo=CR)  # yesterday, though already today in UTC
    hoy_temprano = datetime(2026, 3, 10, 0, 30, tzinfo=CR)

    def creado(t, cuando):
        Ticket.objects.filter(pk=t.pk).update(creado=cuando)
        return t

    creado(ticket(soporte, ana), ayer_tarde)
    creado(ticket(soporte, None, estado="abierto"), hoy_temprano)
    creado(ticket(redes, ana, estado="en_espera"), ayer_tarde)
    creado(ticket(redes, None), hoy_temprano)  # not Ana's: not counted for her
    creado(ticket(soporte, None, vence_primera_respuesta=AHORA - timedelta(hours=1)), ayer_tarde)
    creado(ticket(soporte, None, aviso_primera_respuesta=AHORA - timedelta(hours=1)), ayer_tarde)
    resuelto_hoy = ticket(soporte, ana, estado="resuelto", resuelto_en=hoy_temprano)
    creado(resuelto_hoy, ayer_tarde - timedelta(days=3))
    resuelto_ayer = ticket(soporte, None, estado="resuelto", resuelto_en=ayer_tarde)
    creado(resuelto_ayer, ayer_tarde - timedelta(days=3))
    entrada(resuelto_ayer, texto="antigua")
    for i in range(12):
        entrada(Ticket.objects.filter(departamento=redes, asignado=None).get(), texto=f"r{i}")
    ultima = entrada(resuelto_hoy, DetalleTicket.Tipo.NOTA, jefa, texto="listo")

    with django_assert_num_queries(3):
        mio = tablero(usuario=ana, ahora=AHORA, actividad=5)
        [(e.ticket.numero, str(e.autor) if e.autor else "") for e in mio.actividad]
    assert mio.departamento_id == soporte.pk
    assert mio.mis_abiertos == 2
    assert mio.cola_por_estado == {"nuevo": 3, "abierto": 1, "en_espera": 0}
    assert (mio.sla_en_riesgo, mio.sla_incumplido) == (1, 1)
    assert (mio.nuevos_hoy, mio.resueltos_hoy) == (1, 1)
    assert mio.actividad[0].pk == ultima.pk and len(mio.actividad) == 2  # Redes' are not hers
    assert mio.actividad[0].ticket.numero == resuelto_hoy.numero

    de_sara = tablero(usuario=gente["sara"], ahora=AHORA, actividad=5)
    assert de_sara.nuevos_hoy == 2 and len(de_sara.actividad) == 5
    assert de_sara.cola_por_estado == {"nuevo": 4, "abierto": 1, "en_espera": 1}

    with django_assert_num_queries(0):
        nada = tablero(usuario=gente["ivan"], ahora=AHORA)
    assert (nada.mis_abiertos, nada.nuevos_hoy, nada.actividad) == (0, 0, [])
    de_olga = tablero(usuario=gente["olga"], ahora=AHORA)
    assert de_olga.departamento_id is None and de_olga.actividad == []
    assert de_olga.cola_por_estado == {"nuevo": 0, "abierto": 0, "en_espera": 0}


# --- Saved filters ---------------------------------------------------------------------------


def test_it_saves_replaces_and_deletes_an_agents_filters(gente, soporte):
    ana, beto = gente["ana"], gente["beto"]
    filtro = filtro_guardar(
        usuario=ana,
        nombre=" Urgentes ",
        consulta="prioridad=urgente&estado=nuevo&estado=abierto&despues=abc&q=",
        orden="-creado",
    )
    assert (filtro.nombre, filtro.orden) == ("Urgentes", "-creado")
    assert filtro.consulta == "estado=nuevo&estado=abierto&prioridad=urgente"
    otra = filtro_guardar(usuario=ana, nombre="Urgentes", consulta="prioridad=alta")
    assert otra.pk == filtro.pk and otra.consulta == "prioridad=alta" and otra.orden == "sla"
    filtro_guardar(usuario=beto, nombre="Urgentes", consulta="")
    assert [f.nombre for f in filtros_guardados(usuario=ana)] == ["Urgentes"]
    assert cola_filtros(otra.consulta)["prioridad"] == ["alta"]

    with pytest.raises(FiltroGuardado.DoesNotExist):
        filtro_borrar(usuario=beto, filtro_id=filtro.pk)
    filtro_borrar(usuario=ana, filtro_id=filtro.pk)
    assert not filtros_guardados(usuario=ana).exists()
    with pytest.raises(FiltroGuardado.DoesNotExist):
        filtro_borrar(usuario=ana, filtro_id=filtro.pk)


def test_it_refuses_a_filter_it_could_not_apply(gente):
    for malo in (
        {"nombre": "", "consulta": ""},
        {"nombre": "x" * 81, "consulta": ""},
        {"nombre": "Mal", "consulta": "", "orden": "azar"},
        {"nombre": "Muchos", "consulta": "q=" + "a" * 200 + "&estado=nuevo" * 200},
    ):
        with pytest.raises(ValidationError):
            filtro_guardar(usuario=gente["ana"], **malo)
    with pytest.raises(FiltroInvalido):
        filtro_guardar(usuario=gente["ana"], nombre="Mal", consulta="estado=perdido")
    assert not FiltroGuardado.objects.exists()


# --- PostgreSQL: the department's queue reads its index --------------------------------------


def test_the_department_queue_in_sla_order_reads_its_index(postgres, gente, muchos, soporte):
    pagina = cola(usuario=gente["jefa"], departamento_id=soporte.pk, limite=3)
    with CaptureQueriesContext(postgres) as consultas:
        cola(usuario=gente["jefa"], departamento_id=soporte.pk, limite=3, despues=pagina.siguiente)
    (sql,) = [q["sql"] for q in consultas.captured_queries]
    with postgres.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(r[0] for r in cursor.fetchall())
    assert "ticket_dep_orden_sla" in plan, plan
