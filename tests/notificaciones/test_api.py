"""POST /api/correo/save: the notificacion_SLA_* fields say what was queued, then sent."""

import json

import pytest

from incidencias.models import Notificacion
from incidencias.notificaciones import notificacion_entregar

pytestmark = pytest.mark.django_db


@pytest.fixture
def save(api, make_consumer, regla):
    _, headers = make_consumer("lector-correo", permisos=["correo.save"])

    def call(**extra):
        body = {
            "sistema": "canal_lectura",
            "subject": "prueba",
            "from": "Cliente Uno <cliente@example.org>",
            "to": "soporte@example.com",
            "body": "contenido",
            "message_id": "<m1@example.org>",
            **extra,
        }
        respuesta = api.post(SAVE, json.dumps(body), content_type="application/json", **headers)
        assert respuesta.status_code == 200
        return respuesta.json()

    return call


SAVE = "/api/correo/save"


def test_it_says_what_was_queued_then_what_was_sent(save, smtp, synology, asignado):
    body = save()
    assert body["notificacion_SLA_Synology"] == "En cola: canal soporte, ana (DM)"
    assert body["notificacion_SLA_Correo"] == "En cola: cliente@example.org, ana@example.com"
    assert body["message"] == f"Se ha creado el ticket {body['ticket']}"
    for pk in Notificacion.objects.values_list("pk", flat=True):
        notificacion_entregar(pk=pk)
    again = save()  # the same mail again: same ticket, and where its notifications stand
    assert again["ticket"] == body["ticket"]
    assert again["notificacion_SLA_Synology"] == "Enviada a canal soporte; Enviada a ana (DM)"
    assert again["notificacion_SLA_Correo"] == (
        "Enviada a cliente@example.org; Enviada a ana@example.com"
    )
    assert Notificacion.objects.count() == 4


def test_it_says_no_notification_was_issued_for_machine_mail(save, synology):
    body = save(**{"from": "no-reply@example.org"})
    assert body["notificacion_SLA_Synology"] == body["notificacion_SLA_Correo"] == "No emitida"
