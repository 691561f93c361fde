"""The IMAP poller against a real Dovecot (tests/incidencias/conftest.py)."""

import email.policy
import ssl
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.utils import timezone
from imapclient import DELETED, SEEN

from incidencias import imap
from incidencias.imap import (
    ErrorSondeo,
    MarcarLeido,
    clave_candado,
    es_loopback,
    sondear_buzones,
    sondear_cuenta,
)
from incidencias.models import (
    Adjunto,
    CorreoFallido,
    CuentaCorreo,
    DetalleTicket,
    EstadoCarpeta,
    Ticket,
)
from incidencias.tasks import sondear_buzones_task

PDF = b"%PDF-1.4 informe de prueba\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def correo(asunto, *, message_id=None, responde_a=None, adjunto=None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ana Cliente <ana@example.org>"
    msg["To"] = "soporte@example.com"
    msg["Subject"] = asunto
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id or make_msgid(domain="cliente.example.org")
    if responde_a:
        msg["In-Reply-To"] = msg["References"] = responde_a
    msg.set_content(f"Texto de {asunto}.\n")
    if adjunto:
        msg.add_attachment(adjunto, maintype="application", subtype="pdf", filename="informe.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


@pytest.fixture
def cuenta_para(dovecot, soporte):
    """A mailbox row polling the given test mailbox in plain IMAP on loopback."""

    def crear(buzon, **extra) -> CuentaCorreo:
        campos = {
            "host": dovecot.host,
            "port": dovecot.port,
            "seguridad": CuentaCorreo.Seguridad.NINGUNA,
            "user": buzon.user,
            "password": dovecot.password,
            "mail_boxes": ["INBOX"],
            "departamento": soporte,
            **extra,
        }
        return CuentaCorreo.objects.create(**campos)

    return crear


def vistos(buzon, carpeta="INBOX") -> list[bool]:
    return [SEEN in flags for _, flags in sorted(buzon.flags(carpeta).items())]


def sondear(cuenta) -> imap.ResumenSondeo:
    (resumen,) = sondear_buzones(cuenta_id=cuenta.pk)
    cuenta.refresh_from_db()
    return resumen


# --- Importing ------------------------------------------------------------------------------


def test_it_imports_new_mail_as_tickets_with_their_attachments(db, buzon, cuenta_para):
    buzon.append(correo("Impresora sin tinta"))
    buzon.append(correo("No hay red", adjunto=PDF))
    buzon.append(correo("Clave vencida"))
    cuenta = cuenta_para(buzon)

    salida = StringIO()
    call_command("sondear_buzones", stdout=salida)

    assert f"cuenta {cuenta.pk} ({cuenta}): 3 imported, 0 duplicates, 0 failed" in (
        salida.getvalue()
    )
    assert sorted(Ticket.objects.values_list("asunto", flat=True)) == [
        "Clave vencida",
        "Impresora sin tinta",
        "No hay red",
    ]
    assert set(DetalleTicket.objects.values_list("fuente", flat=True)) == {cuenta.fuente}
    (adjunto,) = Adjunto.objects.all()
    assert adjunto.detalle.ticket.asunto == "No hay red"
    assert adjunto.nombre == "informe.pdf"
    with adjunto.archivo.open("rb") as archivo:
        assert archivo.read() == PDF
    assert vistos(buzon) == [True, True, True]  # the default action marks them read
    estado = EstadoCarpeta.objects.get(cuenta=cuenta, carpeta="INBOX")
    assert estado.ultimo_uid == 3
    with buzon.imap() as c:
        assert estado.uidvalidity == c.select_folder("INBOX")[b"UIDVALIDITY"]
    cuenta.refresh_from_db()
    assert cuenta.ultimo_sondeo is not None
    assert (cuenta.ultimo_error, cuenta.ultimo_error_en) == ("", None)
    assert cache.get(clave_candado(cuenta)) is None  # the lock is released


def test_it_finds_nothing_new_on_the_next_poll(db, buzon, cuenta_para):
    buzon.append(correo("Uno"))
    buzon.append(correo("Dos"))
    cuenta = cuenta_para(buzon, tras_importar=CuentaCorreo.TrasImportar.CONSERVAR)
    assert sondear(cuenta).importados == 2

    resumen = sondear(cuenta)

    # `UID 3:*` still answers the last message (UID 2): it must not be read again.
    assert (resumen.importados, resumen.duplicados, resumen.fallidos) == (0, 0, 0)
    assert Ticket.objects.count() == 2


def test_it_adds_a_reply_appended_later_to_the_same_ticket(db, buzon, cuenta_para):
    original = make_msgid(domain="cliente.example.org")
    buzon.append(correo("Pantalla azul", message_id=original))
    cuenta = cuenta_para(buzon)
    sondear(cuenta)

    buzon.append(correo("Re: Pantalla azul", responde_a=original))
    resumen = sondear(cuenta)

    assert resumen.importados == 1
    ticket = Ticket.objects.get()
    assert [d.asunto for d in ticket.detalles.all()] == ["Pantalla azul", "Re: Pantalla azul"]


def test_it_counts_and_marks_mail_the_pipeline_could_not_read(db, buzon, cuenta_para, monkeypatch):
    def roto(*args, **kwargs):
        raise ValueError("unreadable")

    monkeypatch.setattr("incidencias.ingest.parse_raw", roto)
    buzon.append(correo("Ilegible"))
    cuenta = cuenta_para(buzon)

    resumen = sondear(cuenta)

    assert (resumen.importados, resumen.fallidos, resumen.error) == (0, 1, "")
    fallido = CorreoFallido.objects.get()
    assert (fallido.cuenta, fallido.carpeta, fallido.uid) == (cuenta, "INBOX", 1)
    assert vistos(buzon) == [True]  # its bytes are kept in CorreoFallido


def test_it_reads_only_the_start_of_a_message_over_the_hard_maximum_and_never_again(
    db, buzon, cuenta_para, settings, monkeypatch
):
    settings.IMAP_MAX_BYTES = 300_000
    settings.INGEST_MAX_BYTES = 100_000
    grande = correo("Respaldo enorme", adjunto=PDF)
    texto = b"Texto de Respaldo enorme."
    relleno = b"Relleno del texto, una y otra vez." * 10_000  # the PDF lies past what is read
    grande = grande.replace(texto, texto + relleno)
    assert len(grande) > 300_000
    buzon.append(correo("Antes"))
    buzon.append(grande)
    buzon.append(correo("Despues"))
    cuenta = cuenta_para(buzon, tras_importar=CuentaCorreo.TrasImportar.CONSERVAR)
    pedidos = []
    fetch = imap.IMAPClient.fetch

    def espia(self, messages, data, *args, **kwargs):
        pedidos.append((list(messages), list(data)))
        return fetch(self, messages, data, *args, **kwargs)

    monkeypatch.setattr(imap.IMAPClient, "fetch", espia)

    assert (sondear(cuenta).importados, cuenta.ultimo_error) == (3, "")

    assert ([1, 3], ["BODY.PEEK[]"]) in pedidos  # the big one is never fetched whole
    assert ([2], ["BODY.PEEK[]<0.100000>"]) in pedidos
    detalle = DetalleTicket.objects.get(asunto="Respaldo enorme")
    assert f"El mensaje mide {len(grande)} bytes" in detalle.nota
    assert detalle.texto.startswith("Texto de Respaldo enorme.Relleno del texto")
    assert "El texto del mensaje está cortado donde terminó la descarga." in detalle.nota
    assert not Adjunto.objects.exists()
    with detalle.crudo.open("rb") as archivo:
        assert archivo.read() == grande[:100_000]  # what was read is kept
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 3

    pedidos.clear()
    assert (sondear(cuenta).importados, sondear(cuenta).duplicados) == (0, 0)
    assert not any("BODY.PEEK[]<0.100000>" in datos for _, datos in pedidos)
    # Read again from the start, it is the same entry.
    EstadoCarpeta.objects.filter(cuenta=cuenta).update(ultimo_uid=0)
    assert sondear(cuenta).duplicados == 3
    assert Ticket.objects.count() == 3


# --- Failures between the database and the server ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_marks_on_the_next_poll_a_message_whose_marking_was_interrupted(
    buzon, cuenta_para, monkeypatch
):
    buzon.append(correo("Primero"))
    buzon.append(correo("Segundo"))
    cuenta = cuenta_para(buzon)
    marcar = MarcarLeido.aplicar
    llamadas = []

    def muere_una_vez(self, cliente, uid):
        llamadas.append(uid)
        if len(llamadas) == 1:
            raise RuntimeError("worker killed")
        marcar(self, cliente, uid)

    monkeypatch.setattr(MarcarLeido, "aplicar", muere_una_vez)

    resumen = sondear(cuenta)

    assert "worker killed" in resumen.error
    assert "worker killed" in cuenta.ultimo_error and cuenta.ultimo_error_en is not None
    # The batch was committed before the server step, which then failed on its first message.
    assert sorted(Ticket.objects.values_list("asunto", flat=True)) == ["Primero", "Segundo"]
    assert vistos(buzon) == [False, False]
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 0

    resumen = sondear(cuenta)

    assert (resumen.importados, resumen.duplicados, resumen.error) == (0, 2, "")
    assert sorted(Ticket.objects.values_list("asunto", flat=True)) == ["Primero", "Segundo"]
    assert DetalleTicket.objects.count() == 2
    assert vistos(buzon) == [True, True]
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 2
    assert (cuenta.ultimo_error, cuenta.ultimo_error_en) == ("", None)


@pytest.mark.django_db(transaction=True)
def test_it_leaves_the_message_for_the_next_poll_when_the_database_fails(
    buzon, cuenta_para, monkeypatch
):
    buzon.append(correo("Base caída"))
    cuenta = cuenta_para(buzon)

    def base_caida(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as parche:
        parche.setattr("incidencias.ingest._guardar_lote", base_caida)
        resumen = sondear(cuenta)

    assert "OperationalError: server closed the connection" in resumen.error
    assert cuenta.ultimo_error == resumen.error
    assert vistos(buzon) == [False]
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 0
    assert not Ticket.objects.exists()

    resumen = sondear(cuenta)

    assert (resumen.importados, resumen.error) == (1, "")
    assert Ticket.objects.get().asunto == "Base caída"
    assert vistos(buzon) == [True]


@pytest.mark.django_db(transaction=True)
def test_it_touches_the_server_only_once_the_whole_batch_is_committed(
    buzon, cuenta_para, monkeypatch
):
    primero = make_msgid(domain="cliente.example.org")
    buzon.append(correo("Uno", message_id=primero))
    buzon.append(correo("Re: Uno", responde_a=primero))  # threads within the batch
    buzon.append(correo("Dos"))
    cuenta = cuenta_para(buzon)
    marcar = MarcarLeido.aplicar
    vistas = []

    def aplicar(self, cliente, uid):
        # Outside any transaction, every entry of the batch is already committed.
        vistas.append((uid, connection.in_atomic_block, DetalleTicket.objects.count()))
        marcar(self, cliente, uid)

    monkeypatch.setattr(MarcarLeido, "aplicar", aplicar)

    resumen = sondear(cuenta)

    assert (resumen.importados, resumen.error) == (3, "")
    assert vistas == [(1, False, 3), (2, False, 3), (3, False, 3)]
    assert Ticket.objects.count() == 2
    assert DetalleTicket.objects.filter(asunto="Re: Uno").get().ticket.asunto == "Uno"
    assert vistos(buzon) == [True, True, True]


@pytest.mark.django_db(transaction=True)
def test_it_marks_nothing_of_a_batch_whose_commit_fails(buzon, cuenta_para, monkeypatch):
    for asunto in ("Uno", "Dos", "Tres"):
        buzon.append(correo(asunto))
    cuenta = cuenta_para(buzon)
    aplicadas = []
    monkeypatch.setattr(MarcarLeido, "aplicar", lambda self, cliente, uid: aplicadas.append(uid))

    def caida(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as parche:
        # The last statement of the batch fails, and the database is gone.
        parche.setattr("incidencias.ingest.DetalleTicket.objects.bulk_create", caida)
        parche.setattr("incidencias.ingest._base_disponible", lambda: False)
        resumen = sondear(cuenta)

    assert "OperationalError" in resumen.error
    assert aplicadas == []
    assert not Ticket.objects.exists() and not CorreoFallido.objects.exists()
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 0

    assert sondear(cuenta).importados == 3
    assert aplicadas == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_it_marks_each_batch_once_it_is_committed_while_the_next_is_read(
    buzon, cuenta_para, monkeypatch
):
    monkeypatch.setattr(imap, "LOTE", 2)
    ids = [make_msgid(domain="cliente.example.org") for _ in range(5)]
    buzon.append(correo("Uno", message_id=ids[0]))
    buzon.append(correo("Dos", message_id=ids[1]))
    buzon.append(correo("Re: Uno", message_id=ids[2], responde_a=ids[0]))  # batch 2
    buzon.append(correo("Tres", message_id=ids[3]))
    buzon.append(correo("Re: Re: Uno", message_id=ids[4], responde_a=ids[2]))  # batch 3
    cuenta = cuenta_para(buzon)
    eventos = []
    fetch, marcar = imap.IMAPClient.fetch, MarcarLeido.aplicar

    def leer(self, messages, data, *args, **kwargs):
        if data == ["BODY.PEEK[]"]:
            eventos.append(("fetch", list(messages)))
        return fetch(self, messages, data, *args, **kwargs)

    def aplicar(self, cliente, uid):
        # Outside any transaction: the entry of this mail is committed.
        eventos.append(("marca", uid))
        assert not connection.in_atomic_block
        stored = DetalleTicket.objects.filter(message_id__in=[i.strip("<>") for i in ids[:uid]])
        assert stored.count() == uid
        marcar(self, cliente, uid)

    monkeypatch.setattr(imap.IMAPClient, "fetch", leer)
    monkeypatch.setattr(MarcarLeido, "aplicar", aplicar)
    resumen = sondear(cuenta)

    assert (resumen.importados, resumen.error) == (5, "")
    # The next batch is fetched (and parsed) while one is stored; each is marked once committed.
    assert eventos == [
        ("fetch", [1, 2]),
        ("fetch", [3, 4]),
        ("marca", 1),
        ("marca", 2),
        ("fetch", [5]),
        ("marca", 3),
        ("marca", 4),
        ("marca", 5),
    ]
    uno = Ticket.objects.get(asunto="Uno")  # replies across batches thread
    assert [d.asunto for d in uno.detalles.order_by("id")] == ["Uno", "Re: Uno", "Re: Re: Uno"]
    assert list(Ticket.objects.order_by("numero").values_list("asunto", flat=True)) == [
        "Uno",
        "Dos",
        "Tres",
    ]
    assert vistos(buzon) == [True] * 5
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 5


@pytest.mark.django_db(transaction=True)
def test_it_marks_the_batches_before_one_whose_commit_fails_and_nothing_from_it_on(
    buzon, cuenta_para, monkeypatch
):
    monkeypatch.setattr(imap, "LOTE", 2)
    for asunto in ("Uno", "Dos", "Tres", "Cuatro", "Cinco"):
        buzon.append(correo(asunto))
    cuenta = cuenta_para(buzon)
    aplicadas = []
    monkeypatch.setattr(MarcarLeido, "aplicar", lambda self, cliente, uid: aplicadas.append(uid))
    guardar, lotes = DetalleTicket.objects.bulk_create, []

    def caida_en_el_segundo(objs, *args, **kwargs):
        lotes.append(len(objs))
        if len(lotes) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return guardar(objs, *args, **kwargs)

    with monkeypatch.context() as parche:
        parche.setattr("incidencias.ingest.DetalleTicket.objects.bulk_create", caida_en_el_segundo)
        parche.setattr("incidencias.ingest._base_disponible", lambda: False)
        resumen = sondear(cuenta)

    assert "OperationalError" in resumen.error
    assert aplicadas == [1, 2]
    assert sorted(Ticket.objects.values_list("asunto", flat=True)) == ["Dos", "Uno"]
    assert not CorreoFallido.objects.exists()
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 2

    assert sondear(cuenta).importados == 3
    assert aplicadas == [1, 2, 3, 4, 5]
    assert Ticket.objects.count() == 5


def test_it_reads_a_folder_again_without_duplicates_when_uidvalidity_changes(
    db, buzon, cuenta_para, caplog
):
    viejos = [correo("Viejo 1"), correo("Viejo 2")]
    for raw in viejos:
        buzon.append(raw, carpeta="Soporte")
    cuenta = cuenta_para(buzon, mail_boxes=["Soporte"])
    assert sondear(cuenta).importados == 2
    antes = EstadoCarpeta.objects.get(cuenta=cuenta).uidvalidity

    with buzon.imap() as c:  # the folder is recreated: UIDs start again at 1
        c.delete_folder("Soporte")
    for raw in [*viejos, correo("Nuevo")]:
        buzon.append(raw, carpeta="Soporte")
    resumen = sondear(cuenta)

    estado = EstadoCarpeta.objects.get(cuenta=cuenta)
    assert estado.uidvalidity != antes
    assert estado.ultimo_uid == 3
    assert (resumen.importados, resumen.duplicados) == (1, 2)
    assert Ticket.objects.count() == 3
    assert "UIDVALIDITY" in caplog.text


# --- Several mailboxes and folders ----------------------------------------------------------


def test_it_records_a_login_failure_and_still_polls_the_other_mailboxes(
    db, buzon, otro_buzon, cuenta_para
):
    mala = cuenta_para(buzon, password="equivocada")
    buzon.append(correo("Nunca leído"))
    buena = cuenta_para(otro_buzon)
    otro_buzon.append(correo("Leído"))

    salida = StringIO()
    with pytest.raises(CommandError, match="1 of 2 mailboxes failed"):
        call_command("sondear_buzones", stdout=salida)

    mala.refresh_from_db()
    buena.refresh_from_db()
    assert "LoginError" in mala.ultimo_error and "AUTHENTICATIONFAILED" in mala.ultimo_error
    assert "equivocada" not in mala.ultimo_error
    assert mala.ultimo_error_en is not None and mala.ultimo_sondeo is not None
    assert buena.ultimo_error == ""
    assert Ticket.objects.get().asunto == "Leído"
    assert f"cuenta {mala.pk} ({mala}): ERROR LoginError" in salida.getvalue()
    assert f"cuenta {buena.pk} ({buena}): 1 imported" in salida.getvalue()

    mala.password = buzon.servidor.password  # fixed in the admin: the next poll clears it
    mala.save()
    assert sondear(mala).importados == 1
    assert (mala.ultimo_error, mala.ultimo_error_en) == ("", None)


def test_it_records_a_password_that_does_not_decrypt_and_polls_the_others(
    db, buzon, otro_buzon, cuenta_para
):
    rota = cuenta_para(buzon)
    buena = cuenta_para(otro_buzon)
    otro_buzon.append(correo("Sigue llegando"))
    with connection.cursor() as cursor:  # written under a key this process no longer has
        cursor.execute(
            "UPDATE incidencias_cuentacorreo SET password = %s WHERE id = %s",
            ["v1:retirada:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", rota.pk],
        )

    resumenes = sondear_buzones(solo_vencidas=False)

    assert [(r.cuenta.pk, bool(r.error), r.importados) for r in resumenes] == [
        (rota.pk, True, 0),
        (buena.pk, False, 1),
    ]
    error = CuentaCorreo.objects.values_list("ultimo_error", flat=True).get(pk=rota.pk)
    assert error == "DecryptionError: unknown key id 'retirada'"


def test_it_polls_every_folder_of_the_mailbox(db, buzon, cuenta_para):
    buzon.append(correo("En la bandeja"))
    buzon.append(correo("En Soporte 1"), carpeta="Soporte")
    buzon.append(correo("En Soporte 2"), carpeta="Soporte")
    cuenta = cuenta_para(buzon, mail_boxes=["INBOX", "Soporte"])

    resumen = sondear(cuenta)

    assert {n: c.importados for n, c in resumen.carpetas.items()} == {"INBOX": 1, "Soporte": 2}
    assert Ticket.objects.count() == 3
    assert vistos(buzon, "Soporte") == [True, True]
    estados = dict(EstadoCarpeta.objects.filter(cuenta=cuenta).values_list("carpeta", "ultimo_uid"))
    assert estados == {"INBOX": 1, "Soporte": 2}


def test_it_polls_the_other_folders_when_one_is_missing(db, buzon, cuenta_para):
    buzon.append(correo("Llega igual"))
    cuenta = cuenta_para(buzon, mail_boxes=["Borrada", "INBOX"])

    resumen = sondear(cuenta)

    assert resumen.carpetas["INBOX"].importados == 1
    assert cuenta.ultimo_error.startswith("Borrada: ")
    assert Ticket.objects.get().asunto == "Llega igual"


def test_it_polls_only_mailboxes_that_are_due_from_the_beat_task(
    db, buzon, otro_buzon, cuenta_para
):
    reciente = timezone.now() - timedelta(seconds=10)
    al_dia = cuenta_para(buzon, intervalo_segundos=300, ultimo_sondeo=reciente)
    buzon.append(correo("Espera su turno"))
    vencida = cuenta_para(
        otro_buzon, intervalo_segundos=60, ultimo_sondeo=timezone.now() - timedelta(seconds=61)
    )
    otro_buzon.append(correo("Le toca"))

    resultado = sondear_buzones_task.apply().get()

    assert resultado == {"cuentas": 1, "importados": 1, "con_error": [], "omitidas": []}
    assert Ticket.objects.get().asunto == "Le toca"
    al_dia.refresh_from_db()
    vencida.refresh_from_db()
    assert al_dia.ultimo_sondeo == reciente
    assert vencida.ultimo_sondeo > reciente
    entrada = django_settings.CELERY_BEAT_SCHEDULE["sondear-buzones"]
    assert entrada["task"] == sondear_buzones_task.name == "incidencias.sondear_buzones"


# --- After import ---------------------------------------------------------------------------


def test_it_keeps_mail_unseen_when_told_to_keep_it(db, buzon, cuenta_para):
    buzon.append(correo("Se queda"))
    cuenta = cuenta_para(buzon, tras_importar=CuentaCorreo.TrasImportar.CONSERVAR)

    assert sondear(cuenta).importados == 1

    assert vistos(buzon) == [False]


def test_it_marks_mail_read(db, buzon, cuenta_para):
    buzon.append(correo("Se lee"))
    cuenta = cuenta_para(buzon, tras_importar=CuentaCorreo.TrasImportar.MARCAR_LEIDO)

    assert sondear(cuenta).importados == 1

    assert vistos(buzon) == [True]


@pytest.mark.parametrize("con_move", [True, False], ids=["MOVE", "COPY+EXPUNGE"])
def test_it_moves_mail_to_the_target_folder(db, buzon, cuenta_para, monkeypatch, con_move):
    if not con_move:
        monkeypatch.setattr(
            imap.IMAPClient, "has_capability", lambda self, cap: cap not in ("MOVE", "UIDPLUS")
        )
    buzon.append(correo("Se archiva"))
    buzon.append(correo("También"))
    with buzon.imap() as c:
        c.create_folder("Procesados")
    cuenta = cuenta_para(
        buzon, tras_importar=CuentaCorreo.TrasImportar.MOVER, carpeta_destino="Procesados"
    )

    assert sondear(cuenta).importados == 2

    assert buzon.flags("INBOX") == {}
    primero, segundo = buzon.cuerpos("Procesados")
    assert b"Subject: Se archiva" in primero and "También".encode() in segundo
    assert all(DELETED not in flags for flags in buzon.flags("Procesados").values())


@pytest.mark.parametrize("con_uidplus", [True, False], ids=["UID EXPUNGE", "EXPUNGE"])
def test_it_deletes_mail(db, buzon, cuenta_para, monkeypatch, con_uidplus):
    if not con_uidplus:
        monkeypatch.setattr(imap.IMAPClient, "has_capability", lambda self, cap: False)
    buzon.append(correo("Se borra"))
    buzon.append(correo("También"))
    cuenta = cuenta_para(buzon, tras_importar=CuentaCorreo.TrasImportar.ELIMINAR)

    assert sondear(cuenta).importados == 2

    assert buzon.flags("INBOX") == {}
    assert Ticket.objects.count() == 2


def test_it_never_deletes_a_message_it_read_only_in_part(db, buzon, cuenta_para, settings):
    settings.IMAP_MAX_BYTES = 300_000
    settings.INGEST_MAX_BYTES = 100_000
    buzon.append(correo("Se borra"))
    buzon.append(correo("Enorme", adjunto=PDF * (400_000 // len(PDF) + 1)))
    cuenta = cuenta_para(buzon, tras_importar=CuentaCorreo.TrasImportar.ELIMINAR)

    assert sondear(cuenta).importados == 2

    (restante,) = buzon.flags("INBOX")  # the whole message is still there, untouched
    assert restante == 2 and vistos(buzon) == [False]
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 2  # and never read again
    assert sondear(cuenta).importados == 0


def test_it_refuses_to_move_to_a_missing_folder_before_importing_anything(db, buzon, cuenta_para):
    buzon.append(correo("Sin destino"))
    cuenta = cuenta_para(
        buzon, tras_importar=CuentaCorreo.TrasImportar.MOVER, carpeta_destino="NoExiste"
    )

    resumen = sondear(cuenta)

    assert "'NoExiste' does not exist" in resumen.error == cuenta.ultimo_error
    assert not Ticket.objects.exists()
    assert vistos(buzon) == [False]


def test_it_refuses_to_move_mail_into_a_folder_it_polls(db, buzon, cuenta_para):
    buzon.append(correo("En círculo"))
    cuenta = cuenta_para(
        buzon,
        mail_boxes=["INBOX", "Procesados"],
        tras_importar=CuentaCorreo.TrasImportar.MOVER,
        carpeta_destino="Procesados",
    )

    resumen = sondear(cuenta)

    assert "'Procesados' is also polled" in resumen.error
    assert not Ticket.objects.exists()


# --- The lock -------------------------------------------------------------------------------


def test_it_skips_a_mailbox_another_poll_holds(db, buzon, cuenta_para):
    buzon.append(correo("Espera"))
    cuenta = cuenta_para(buzon)
    clave = clave_candado(cuenta)
    assert cache.add(clave, "otro-proceso", 60)
    try:
        assert sondear_cuenta(cuenta=cuenta).omitida
        salida = StringIO()
        call_command("sondear_buzones", "--cuenta", str(cuenta.pk), stdout=salida)
        assert cache.get(clave) == "otro-proceso"  # not ours to release
    finally:
        cache.delete(clave)

    assert "skipped, another poll of this mailbox is running" in salida.getvalue()
    assert not Ticket.objects.exists()
    assert vistos(buzon) == [False]
    cuenta.refresh_from_db()
    assert cuenta.ultimo_sondeo is None  # the poll holding the lock records its own outcome

    assert sondear(cuenta).importados == 1


# --- Transport security ---------------------------------------------------------------------


@pytest.mark.parametrize("seguridad", ["ssl", "starttls"])
def test_it_polls_over_tls_only_with_a_trusted_certificate(
    db, buzon, cuenta_para, dovecot, monkeypatch, seguridad
):
    buzon.append(correo("Cifrado"))
    port = dovecot.tls_port if seguridad == "ssl" else dovecot.port
    cuenta = cuenta_para(buzon, seguridad=seguridad, port=port)

    resumen = sondear(cuenta)  # the test CA is not among the system's

    assert "CERTIFICATE_VERIFY_FAILED" in resumen.error
    assert not Ticket.objects.exists()

    monkeypatch.setattr(
        imap, "contexto_tls", lambda: ssl.create_default_context(cafile=str(dovecot.cafile))
    )
    assert sondear(cuenta).importados == 1


def test_it_refuses_plain_imap_to_a_host_that_is_not_loopback(soporte, monkeypatch):
    conexiones = []
    monkeypatch.setattr(imap, "IMAPClient", lambda *a, **k: conexiones.append(a))
    cuenta = CuentaCorreo.objects.create(
        host="imap.example.org",
        port=143,
        seguridad=CuentaCorreo.Seguridad.NINGUNA,
        user="soporte",
        password="secreta",
        departamento=soporte,
    )

    with pytest.raises(ErrorSondeo, match="only allowed to a loopback host"):
        sondear_cuenta(cuenta=cuenta)
    resumen = sondear(cuenta)

    assert "not 'imap.example.org'" in resumen.error
    assert cuenta.ultimo_error == resumen.error
    assert conexiones == []


def test_it_tells_loopback_hosts_from_the_rest():
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert es_loopback(host), host
    for host in ("10.0.0.1", "imap.example.org", "localhost.example.org", "127.0.0.1.nip.io"):
        assert not es_loopback(host), host


# --- The command ----------------------------------------------------------------------------


def test_it_refuses_to_poll_a_mailbox_that_is_not_active(db, buzon, cuenta_para):
    cuenta = cuenta_para(buzon, estado=CuentaCorreo.Estado.INACTIVO)

    with pytest.raises(CommandError, match=f"No active mailbox with id {cuenta.pk}"):
        call_command("sondear_buzones", "--cuenta", str(cuenta.pk), stdout=StringIO())


def test_it_polls_from_the_admin_and_can_read_a_folder_again(db, buzon, cuenta_para, admin_client):
    buzon.append(correo("Desde el admin"))
    cuenta = cuenta_para(buzon)
    response = admin_client.post(
        "/admin/incidencias/cuentacorreo/",
        {"action": "sondear_ahora", "_selected_action": [cuenta.pk]},
        follow=True,
    )
    assert "1 imported" in response.content.decode()
    assert Ticket.objects.get().asunto == "Desde el admin"
    admin_client.post(
        "/admin/incidencias/cuentacorreo/",
        {"action": "releer_desde_el_inicio", "_selected_action": [cuenta.pk]},
    )
    assert not EstadoCarpeta.objects.filter(cuenta=cuenta).exists()
    admin_client.post(
        "/admin/incidencias/cuentacorreo/",
        {"action": "sondear_ahora", "_selected_action": [cuenta.pk]},
    )
    assert Ticket.objects.count() == 1  # read again, deduplicated
    assert EstadoCarpeta.objects.get(cuenta=cuenta).ultimo_uid == 1
