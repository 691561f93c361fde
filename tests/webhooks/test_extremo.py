"""The issue's end-to-end promise: a mail to a department produces, through one delivery by a
real Celery worker on Redis, a message in the department's Synology channel (a local Synology
speaking its wire format), a direct message to the assignee from the bot and an acknowledgement
mail (a real SMTP server); with Synology down nothing is lost, and it goes out once it is back."""

import json

import pytest

from incidencias.ingest import ingest_raw
from incidencias.models import Notificacion
from incidencias.notificaciones import notificacion_reintentar
from sso.models import Usuario
from tests.notificaciones.conftest import correo_entrante
from tests.notificaciones.test_worker import esperar
from webhooks.models import CanalSynology

from .conftest import CANAL_TOKEN, error, ok_chatbot

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def canal(soporte):
    return CanalSynology.objects.create(departamento=soporte, nombre="soporte", token=CANAL_TOKEN)


@pytest.fixture
def ana(soporte):
    return Usuario.objects.create_user(
        username="ana",
        email="ana@example.com",
        password="x",
        departamento=soporte,
        acceso_ticket=True,
        id_synology=41,
    )


def estados():
    return sorted(Notificacion.objects.values_list("estado", flat=True))


def test_a_mail_reaches_the_channel_the_assignee_and_the_requester(
    trabajador, smtp, synology, regla, canal, ana
):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})
    synology.espera("chatbot").respond_with_json(ok_chatbot(41))

    with trabajador():
        resultado = ingest_raw(correo_entrante(asunto="Sin servicio"))
        esperar(lambda: estados() == ["enviada"] * 4)

    numero = resultado.ticket.numero
    assert resultado.ticket.asignado == ana
    assert resultado.notificacion_synology == "En cola: canal soporte, ana (DM)"
    canal_payload, dm_payload = synology.payloads()
    assert f"#{numero}" in canal_payload["text"] and "Sin servicio" in canal_payload["text"]
    assert dm_payload["user_ids"] == [41] and f"#{numero}" in dm_payload["text"]
    assert [m["Subject"] for m in smtp.para("cliente@example.org")] == [
        f"Hemos recibido su mensaje: Sin servicio [Ticket #{numero}]"
    ]
    assert len(smtp.para("ana@example.com")) == 1


def test_with_synology_down_nothing_is_lost(
    trabajador, smtp, synology, regla, canal, ana, settings
):
    settings.NOTIFICACIONES_MAX_INTENTOS = 1
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json(error(117))  # refuses
    synology.espera("chatbot").respond_with_json(error(102))  # busy: a passing failure

    with trabajador():
        resultado = ingest_raw(correo_entrante(asunto="Sin servicio"))
        esperar(lambda: estados() == ["enviada", "enviada", "fallida", "fallida"])
    fallidas = Notificacion.objects.filter(estado="fallida", canal="synology")
    assert fallidas.count() == 2 and all(n.ultimo_error for n in fallidas)

    # Synology is back: retried from admin, each goes out once.
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})
    synology.espera("chatbot").respond_with_json(ok_chatbot(41))
    with trabajador():
        assert notificacion_reintentar(notificaciones=fallidas) == 2
        esperar(lambda: estados() == ["enviada"] * 4)
    textos = [json.dumps(p) for p in synology.payloads()]
    assert sum(f"#{resultado.ticket.numero}" in t for t in textos) == 4
