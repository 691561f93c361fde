"""Search, the admin of the ticket domain, failed-mail reprocessing and the demo data."""

import pytest
from django.core.management import call_command
from django.db import connection

from credenciales.models import Credencial, TipoCredencial
from incidencias import ingest as ingest_module
from incidencias.ingest import ingest_raw
from incidencias.models import CorreoFallido, CuentaCorreo, DetalleTicket, PoliticaSLA, Ticket
from incidencias.selectors import ticket_buscar
from sso.models import Departamento, Usuario

pytestmark = pytest.mark.django_db


def mail(message_id, subject, body, sender="cliente@example.org", extra=""):
    return (
        f"From: Cliente <{sender}>\r\nTo: soporte@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def test_search_finds_subject_body_and_requester_newest_first():
    a = ingest_raw(mail("a@x", "Servidor caído", "El servidor de correo no responde")).ticket
    b = ingest_raw(mail("b@x", "Factura", "Necesito la factura de los servidores")).ticket
    c = ingest_raw(mail("c@x", "Hola", "nada que ver", sender="marta.rojas@example.org")).ticket
    reply = mail("d@x", "Re: Hola", "ahora la impresora falla", extra="In-Reply-To: <c@x>\r\n")
    ingest_raw(reply)
    if connection.vendor == "postgresql":
        # Spanish stemming: "servidores" and "servidor" match each other.
        assert list(ticket_buscar(texto="servidor")) == [b, a]
    else:
        assert list(ticket_buscar(texto="servidor")) == [b, a]
    assert list(ticket_buscar(texto="impresora")) == [c]
    assert list(ticket_buscar(texto="marta.rojas@example.org")) == [c]
    assert list(ticket_buscar(texto="   ")) == []


def test_search_runs_one_query_whatever_the_matches(django_assert_num_queries):
    for index in range(5):
        ingest_raw(mail(f"m{index}@x", f"Caso {index}", "enlace de fibra intermitente"))
    with django_assert_num_queries(1):
        assert len(list(ticket_buscar(texto="fibra"))) == 5


def test_search_survives_query_syntax(postgres):
    ingest_raw(mail("a@x", "VPN", "la vpn no conecta"))
    for texto in ['"vpn', "vpn & | !", "-", "(((", "'; DROP TABLE x; --"]:
        list(ticket_buscar(texto=texto))  # never a syntax error


def test_admin_pages_open(admin_client):
    ticket = ingest_raw(mail("a@x", "Servidor caído", "no responde")).ticket
    for url in [
        "/admin/incidencias/ticket/",
        f"/admin/incidencias/ticket/{ticket.pk}/change/",
        "/admin/incidencias/ticket/?q=servidor",
        f"/admin/incidencias/ticket/?q={ticket.numero}",
        "/admin/incidencias/detalleticket/",
        "/admin/incidencias/cuentacorreo/add/",
        "/admin/incidencias/correofallido/",
        "/admin/incidencias/politicasla/",
        "/admin/incidencias/calendario/add/",
        "/admin/incidencias/coladepartamento/",
        "/admin/incidencias/regladepartamento/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    listing = admin_client.get("/admin/incidencias/ticket/?q=servidor").content.decode()
    assert "Servidor caído" in listing


def test_the_mailbox_form_keeps_the_password_when_left_empty(admin_client, soporte):
    cuenta = CuentaCorreo.objects.create(
        host="mail.example.com",
        user="soporte@example.com",
        password="antigua",
        departamento=soporte,
    )
    form = {
        "host": "imap.example.com", "port": 993, "seguridad": "ssl", "user": "soporte@example.com",
        "password": "", "mail_boxes": '["INBOX"]', "departamento": soporte.pk, "estado": "activo",
        "intervalo_segundos": 60, "tras_importar": "marcar_leido", "carpeta_destino": "",
        "carpetas_estado-TOTAL_FORMS": 0, "carpetas_estado-INITIAL_FORMS": 0,
    }  # fmt: skip
    response = admin_client.post(f"/admin/incidencias/cuentacorreo/{cuenta.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    cuenta.refresh_from_db()
    assert (cuenta.host, cuenta.password) == ("imap.example.com", "antigua")
    page = admin_client.get(f"/admin/incidencias/cuentacorreo/{cuenta.pk}/change/").content
    assert b"antigua" not in page
    form["password"] = "nueva"
    admin_client.post(f"/admin/incidencias/cuentacorreo/{cuenta.pk}/change/", form)
    cuenta.refresh_from_db()
    assert cuenta.password == "nueva"


def _falla_una_vez(monkeypatch):
    original = ingest_module._guardar_detalle
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("fallo simulado")
        return original(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_guardar_detalle", flaky)


def test_failed_mail_is_reprocessed_from_the_admin(admin_client, monkeypatch):
    _falla_una_vez(monkeypatch)
    resultado = ingest_raw(mail("a@x", "Caso", "texto"))
    assert resultado.ticket is None
    fallido = CorreoFallido.objects.get()
    assert Ticket.objects.count() == 0
    response = admin_client.post(
        "/admin/incidencias/correofallido/",
        {"action": "reprocesar", "_selected_action": [fallido.pk]},
        follow=True,
    )
    assert "Se ha creado el ticket" in response.content.decode()
    fallido.refresh_from_db()
    assert fallido.reprocesado_en is not None
    assert fallido.detalle.ticket.asunto == "Caso"


def test_failed_mail_is_reprocessed_by_the_command(monkeypatch, capsys):
    _falla_una_vez(monkeypatch)
    ingest_raw(mail("a@x", "Caso", "texto"))
    call_command("reprocesar_correos")
    assert "Se ha creado el ticket" in capsys.readouterr().out
    assert Ticket.objects.count() == 1
    call_command("reprocesar_correos")  # nothing pending: nothing happens
    assert Ticket.objects.count() == 1


def test_the_demo_loads_the_ticket_configuration_once(settings):
    settings.DEBUG = True
    call_command("demo")

    def counts():
        return (
            PoliticaSLA.objects.count(),
            CuentaCorreo.objects.count(),
            Usuario.objects.count(),
            TipoCredencial.objects.count(),
            Credencial.objects.count(),
            Ticket.objects.count(),
            DetalleTicket.objects.filter(tipo=DetalleTicket.Tipo.ENTRANTE).count(),
        )

    primera = counts()
    assert primera[0] == 4 * Departamento.objects.count()
    assert primera[3:5] == (5, 1)
    # Eight customer tickets; the four replies joined their tickets instead of opening new ones.
    assert primera[5:] == (8, 12)
    assert not Ticket.objects.filter(departamento__isnull=True).exists()
    assert not Ticket.objects.filter(asignado__isnull=True).exists()
    # The support head manages the vault and an agent reveals; another department's does not.
    assert Usuario.objects.get(username="jefa.soporte").has_perm("credenciales.change_credencial")
    assert Usuario.objects.get(username="agente1").has_perm("credenciales.revelar_credencial")
    assert not Usuario.objects.get(username="agente2").has_perm("credenciales.view_credencial")
    call_command("demo")
    assert counts() == primera


def test_admin_lists_keep_a_constant_number_of_queries(
    admin_client, soporte, monkeypatch, settings
):
    from django.db import connection

    settings.SESSION_IDLE_MINUTES = 0  # no session write (the activity stamp) in the counts
    from django.test.utils import CaptureQueriesContext

    def cuenta_consultas(url):
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    CuentaCorreo.objects.create(host="h", user="a@example.com", password="x", departamento=soporte)
    _falla_una_vez(monkeypatch)
    ingest_raw(mail("f1@x", "Caso", "texto"))
    cuenta_consultas("/admin/")  # the session's first request records its last activity
    antes = (
        cuenta_consultas("/admin/incidencias/cuentacorreo/"),
        cuenta_consultas("/admin/incidencias/correofallido/"),
    )
    for index in range(5):
        CuentaCorreo.objects.create(
            host="h", user=f"b{index}@example.com", password="x", departamento=soporte
        )
        _falla_una_vez(monkeypatch)
        ingest_raw(mail(f"f{index + 2}@x", f"Caso {index}", "texto"))
    despues = (
        cuenta_consultas("/admin/incidencias/cuentacorreo/"),
        cuenta_consultas("/admin/incidencias/correofallido/"),
    )
    assert despues == antes


def test_admin_ticket_search_takes_odd_digits(admin_client):
    assert admin_client.get("/admin/incidencias/ticket/?q=²").status_code == 200
    assert admin_client.get("/admin/incidencias/ticket/?q=" + "9" * 30).status_code == 200


@pytest.mark.parametrize(
    "horario", [{"0": "08:00-17:00"}, {"0": [["08:00"]]}, [["08:00", "17:00"]], {"9": []}]
)
def test_a_malformed_calendar_is_refused_and_never_stops_mail(soporte, horario):
    from django.core.exceptions import ValidationError

    from incidencias.models import Calendario, PoliticaSLA

    calendario = Calendario(nombre="Roto", horario=horario)
    with pytest.raises(ValidationError):
        calendario.full_clean()
    calendario.save()  # as if written around the form
    PoliticaSLA.objects.create(
        departamento=soporte, prioridad="normal", primera_respuesta_min=60, resolucion_min=600,
        calendario=calendario,
    )  # fmt: skip
    cuenta = CuentaCorreo.objects.create(host="h", user="s@example.com", departamento=soporte)
    resultado = ingest_raw(mail("cal@x", "Caso", "texto"), cuenta=cuenta)
    assert resultado.ticket is not None
    assert resultado.ticket.departamento == soporte


def _plantar_vector(tabla: str, trigger: str, pk: int, palabra: str) -> None:
    """Store a vector the text does not give (the trigger off meanwhile), to tell whether a
    later write recomputed it."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks, for ALTER TABLE
        cursor.execute(f"ALTER TABLE {tabla} DISABLE TRIGGER {trigger}")
        cursor.execute(
            f"UPDATE {tabla} SET busqueda = to_tsvector('simple', %s) WHERE id = %s",  # noqa: S608 - a test's fixed SQL
            [palabra, pk],
        )
        cursor.execute(f"ALTER TABLE {tabla} ENABLE TRIGGER {trigger}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_it_recomputes_a_tickets_search_vector_only_when_its_text_changes(postgres):
    ticket = ingest_raw(mail("a@x", "Servidor caído", "no responde")).ticket
    _plantar_vector("incidencias_ticket", "incidencias_ticket_busqueda", ticket.pk, "marcador")
    ticket.refresh_from_db()

    ticket.prioridad = "alta"
    ticket.save()  # every column written, the text unchanged: the vector is left alone
    assert list(ticket_buscar(texto="marcador")) == [ticket]

    ticket.asunto = "Corte de fibra"
    ticket.save()
    assert list(ticket_buscar(texto="fibra")) == [ticket]
    assert list(ticket_buscar(texto="marcador")) == []

    Ticket.objects.filter(pk=ticket.pk).update(solicitante_email="marta.rojas@example.org")
    assert list(ticket_buscar(texto="marta.rojas@example.org")) == [ticket]

    ticket.refresh_from_db()
    ticket.busqueda = None  # an instance that never read its vector writes it back empty
    ticket.save()
    assert list(ticket_buscar(texto="fibra")) == [ticket]


def test_it_recomputes_an_entrys_search_vector_only_when_its_text_changes(postgres):
    ticket = ingest_raw(mail("a@x", "Hola", "la impresora falla")).ticket
    detalle = ticket.detalles.get()
    _plantar_vector(
        "incidencias_detalleticket", "incidencias_detalle_busqueda", detalle.pk, "marcador"
    )
    detalle.refresh_from_db()

    detalle.nota = "revisado"
    detalle.save()
    assert list(ticket_buscar(texto="marcador")) == [ticket]
    assert list(ticket_buscar(texto="impresora")) == []  # the planted vector stands

    detalle.texto = "la impresora sigue fallando"
    detalle.save()
    assert list(ticket_buscar(texto="impresora")) == [ticket]
    assert list(ticket_buscar(texto="marcador")) == []
