"""POST /api/Synology/BotAsistencia/configurarIdUsuario: Synology Chat's bot."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from incidencias.models import Ticket
from sso.models import Bitacora, Usuario
from webhooks import api as bot_api

from .conftest import BOT_TOKEN, error, ok_chatbot

URL = "/api/Synology/BotAsistencia/configurarIdUsuario"

pytestmark = pytest.mark.django_db


@pytest.fixture
def jmora(soporte):
    return Usuario.objects.create_user(
        username="jmora",
        password="x",
        nombre="Julia Mora",
        departamento=soporte,
        acceso_ticket=True,
    )


def seed_body(**cambios):
    """The seed's example request."""
    cuerpo = {
        "token": BOT_TOKEN,
        "user_id": 120,
        "username": "jmora",
        "thread_id": 1,
        "timestamp": 1752066920406,
        "text": "Hola.",
    }
    cuerpo.update(cambios)
    return {k: v for k, v in cuerpo.items() if v is not None}


def post_json(api, cuerpo, **extra):
    return api.post(URL, json.dumps(cuerpo), content_type="application/json", **extra)


def post_form(api, cuerpo):
    """As Synology's outgoing webhook posts: application/x-www-form-urlencoded."""
    from urllib.parse import urlencode

    return api.post(URL, urlencode(cuerpo), content_type="application/x-www-form-urlencoded")


def respuesta_del_bot(synology) -> str:
    (payload,) = synology.payloads()
    return payload["text"]


def test_it_links_the_user_and_answers_as_the_seed_says(api, synology, jmora):
    synology.espera("chatbot").respond_with_json(ok_chatbot(120))

    respuesta = post_json(
        api, seed_body(), HTTP_X_USER_CONSUMO="UsuarioPrueba", HTTP_X_USER_SECRET="strDasdak"
    )

    assert respuesta.status_code == 200
    cuerpo = respuesta.json()
    assert cuerpo == {
        "data": {
            "response_update_usuario": "Usuario jmora actualizado.",
            "synology_response": ok_chatbot(120),
        },
        "status": "ok",
        "message": "Usuario jmora actualizado.",
        "code": 200,
        "id_bitacora_log": cuerpo["id_bitacora_log"],
    }
    jmora.refresh_from_db()
    assert jmora.id_synology == 120
    (payload,) = synology.payloads()
    assert payload["user_ids"] == [120]
    assert payload["text"].startswith("Hola, Julia Mora. Tu cuenta de Synology Chat está vinculada")
    fila = Bitacora.objects.get(pk=cuerpo["id_bitacora_log"])
    assert (fila.endpoint, fila.estado, fila.usuario_id) == (URL, 200, jmora.pk)


def test_it_accepts_synologys_outgoing_webhook_form(api, synology, jmora):
    synology.espera("chatbot").respond_with_json(ok_chatbot(120))

    respuesta = post_form(
        api,
        {
            "token": BOT_TOKEN,
            "channel_id": "3",
            "channel_name": "soporte",
            "user_id": "120",
            "username": "jmora",
            "post_id": "23059679412324",
            "timestamp": "1752066920406",
            "text": "!bot ayuda",
            "trigger_word": "!bot",
        },
    )

    assert respuesta.status_code == 200, respuesta.content
    assert respuesta.json()["message"] == "Usuario jmora actualizado."
    assert respuesta_del_bot(synology).startswith("Entiendo:\n• ticket 132")


@pytest.mark.parametrize(
    "token", ["otro-token", "", None, BOT_TOKEN + "x", BOT_TOKEN[:-1]], ids=repr
)
def test_it_refuses_a_wrong_or_missing_token_with_a_401_in_envelope_a(api, synology, jmora, token):
    respuesta = post_json(api, seed_body(token=token))

    assert respuesta.status_code == 401
    cuerpo = respuesta.json()
    assert cuerpo == {
        "data": None,
        "status": "error",
        "message": "Token del bot inválido.",
        "code": 401,
        "id_bitacora_log": cuerpo["id_bitacora_log"],
    }
    assert Bitacora.objects.get(pk=cuerpo["id_bitacora_log"]).estado == 401
    assert synology.solicitudes() == []
    jmora.refresh_from_db()
    assert jmora.id_synology is None


def test_it_refuses_every_token_when_none_is_configured(api, synology, settings, jmora):
    settings.SYNOLOGY_BOT_TOKEN = ""

    assert post_json(api, seed_body(token="")).status_code == 401
    assert post_form(api, {"user_id": "1", "username": "jmora"}).status_code == 401


def test_it_compares_the_token_in_constant_time(api, synology, jmora, monkeypatch):
    comparados = []
    original = bot_api.hmac.compare_digest

    def espia(a, b):
        comparados.append((a, b))
        return original(a, b)

    monkeypatch.setattr(bot_api.hmac, "compare_digest", espia)

    post_json(api, seed_body(token="malo"))

    assert comparados == [(b"malo", BOT_TOKEN.encode())]


def test_it_never_stores_or_logs_the_bot_token(api, synology, jmora, caplog):
    caplog.set_level(logging.DEBUG)
    synology.espera("chatbot").respond_with_json(ok_chatbot(120))
    post_json(api, seed_body())
    post_form(api, {"token": BOT_TOKEN + "x", "user_id": "1", "username": "jmora"})
    api.post(URL + f"?token={BOT_TOKEN}", "{}", content_type="application/json")

    resumenes = json.dumps(list(Bitacora.objects.values_list("resumen", flat=True)))
    assert Bitacora.objects.count() == 3
    assert BOT_TOKEN not in resumenes and '"token": "********"' in resumenes
    nuestros = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    assert all(BOT_TOKEN not in mensaje for mensaje in nuestros)


def test_it_answers_422_without_a_username(api, synology):
    respuesta = post_json(api, seed_body(username=None))

    assert respuesta.status_code == 422
    assert "username" in respuesta.json()["errors"]


def test_it_tells_an_unknown_synology_user_how_to_link_their_account(api, synology):
    synology.espera("chatbot").respond_with_json(ok_chatbot(120))

    respuesta = post_json(api, seed_body(username="desconocido"))

    assert respuesta.status_code == 200
    assert (
        respuesta.json()["data"]["response_update_usuario"] == "Usuario desconocido no encontrado."
    )
    texto = respuesta_del_bot(synology)
    assert "No conozco ningún usuario del portal con el login «desconocido»" in texto
    assert "120" in texto


def test_it_maps_by_username_ignoring_case_and_inactive_users(api, synology, jmora):
    Usuario.objects.create_user(username="baja", password="x", is_active=False)
    synology.espera("chatbot").respond_with_json(ok_chatbot(5))
    synology.espera("chatbot").respond_with_json(ok_chatbot(6))

    assert post_json(api, seed_body(username="JMora", user_id=5)).json()["message"] == (
        "Usuario jmora actualizado."
    )
    assert post_json(api, seed_body(username="baja", user_id=6)).json()["message"] == (
        "Usuario baja no encontrado."
    )


def test_it_links_nobody_when_logins_differ_only_in_case_or_belong_to_a_customer(
    api, synology, jmora
):
    Usuario.objects.create_user(username="JMora", password="x")  # another person
    Usuario.objects.create_user(
        username="cliente1", password="x", tipo_usuario=Usuario.Tipo.CLIENTE
    )
    for user_id in (5, 6, 7):
        synology.espera("chatbot").respond_with_json(ok_chatbot(user_id))

    exacto = post_json(api, seed_body(username="JMora", user_id=5)).json()
    ambiguo = post_json(api, seed_body(username="jMORA", user_id=6)).json()
    cliente = post_json(api, seed_body(username="cliente1", user_id=7)).json()

    assert exacto["message"] == "Usuario JMora actualizado."
    assert ambiguo["message"] == "Usuario jMORA no encontrado."
    assert cliente["message"] == "Usuario cliente1 no encontrado."
    jmora.refresh_from_db()
    assert jmora.id_synology is None
    assert Usuario.objects.get(username="JMora").id_synology == 5
    assert Usuario.objects.get(username="cliente1").id_synology is None


def test_it_stores_the_id_that_works_when_the_chatbot_knows_the_user_by_another(
    api, synology, jmora
):
    synology.espera("chatbot").respond_with_json(
        {"data": {"fail": {"120": "user not found"}, "succ": None}, "success": True}
    )
    synology.espera("user_list").respond_with_json(
        {"success": True, "data": {"users": [{"user_id": 7, "username": "jmora"}]}}
    )
    synology.espera("chatbot").respond_with_json(ok_chatbot(7))

    respuesta = post_json(api, seed_body())

    assert respuesta.status_code == 200
    assert respuesta.json()["data"]["synology_response"] == ok_chatbot(7)
    jmora.refresh_from_db()
    assert jmora.id_synology == 7


def test_it_answers_502_when_synology_cannot_be_reached_but_keeps_the_link(api, synology, jmora):
    synology.espera("chatbot").respond_with_json(error(404, "bot not legal"))

    respuesta = post_json(api, seed_body())

    assert respuesta.status_code == 502
    cuerpo = respuesta.json()
    assert cuerpo["status"] == "error" and cuerpo["code"] == 502
    assert cuerpo["data"]["response_update_usuario"] == "Usuario jmora actualizado."
    jmora.refresh_from_db()
    assert jmora.id_synology == 120


# --- commands ---------------------------------------------------------------------------------


@pytest.fixture
def ticket(soporte):
    return Ticket.objects.create(
        numero=132,
        asunto="El servidor no responde",
        departamento=soporte,
        estado=Ticket.Estado.ABIERTO,
        vence_primera_respuesta=datetime(2025, 3, 4, 15, 30, tzinfo=UTC),
        primera_respuesta_en=datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
        vence_resolucion=datetime(2025, 3, 6, 15, 30, tzinfo=UTC),
    )


def preguntar(api, synology, texto, username="jmora"):
    synology.espera("chatbot").respond_with_json(ok_chatbot(120))
    respuesta = post_json(api, seed_body(text=texto, username=username))
    assert respuesta.status_code == 200
    return respuesta_del_bot(synology)


def test_it_tells_an_agent_of_the_department_a_tickets_state_assignee_and_sla(
    api, synology, jmora, ticket
):
    ticket.asignado = jmora
    ticket.save()

    texto = preguntar(api, synology, "Ticket #132")

    assert texto.splitlines()[:6] == [
        "#132 El servidor no responde",
        "Estado: abierto",
        "Asignado a: Julia Mora",
        "Departamento: Soporte",
        "Primera respuesta: vence el 04/03/2025 09:30, cumplido el 04/03/2025 09:00",
        "Resolución: vence el 06/03/2025 09:30",
    ]
    assert texto.splitlines()[6].endswith(f"/tickets/{ticket.numero}/|Abrir el ticket>")


@pytest.mark.parametrize("quien", ["asignado", "jefe", "staff"])
def test_it_shows_a_ticket_to_its_assignee_a_head_of_its_department_and_staff(
    api, synology, ticket, redes, soporte, quien
):
    usuario = Usuario.objects.create_user(username="persona", password="x", departamento=redes)
    if quien == "asignado":
        ticket.asignado = usuario
        ticket.save()
    elif quien == "jefe":
        usuario.departamento, usuario.jefe = soporte, True
        usuario.save()
    else:
        usuario.is_staff = True
        usuario.save()

    assert preguntar(api, synology, "ticket 132", username="persona").startswith("#132 ")


def test_it_says_not_found_for_a_ticket_the_user_may_not_see(api, synology, ticket, redes):
    Usuario.objects.create_user(
        username="ajeno", password="x", departamento=redes, acceso_ticket=True, jefe=True
    )

    texto = preguntar(api, synology, "ticket 132", username="ajeno")

    assert texto == "No se encontró el ticket #132."


def test_it_says_not_found_for_a_ticket_that_does_not_exist(api, synology, jmora):
    assert preguntar(api, synology, "ticket 999") == "No se encontró el ticket #999."


def test_it_lists_the_users_open_tickets(api, synology, jmora, soporte):
    ahora = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)
    for numero, estado in [(1, "abierto"), (2, "en_espera"), (3, "cerrado"), (4, "nuevo")]:
        Ticket.objects.create(
            numero=numero,
            asunto=f"Asunto {numero}",
            departamento=soporte,
            asignado=jmora,
            estado=estado,
            vence_resolucion=ahora + timedelta(days=numero),
        )
    Ticket.objects.create(numero=5, asunto="De otro", departamento=soporte, estado="abierto")

    texto = preguntar(api, synology, "mis tickets")

    lineas = texto.splitlines()
    assert lineas[0] == "Tus tickets abiertos:"
    assert [linea.split("|")[1].split(">")[0] for linea in lineas[1:]] == ["#1", "#2", "#4"]
    assert "(abierto, vence el 05/03/2025 09:30)" in lineas[1]


def test_it_cuts_a_long_list_of_open_tickets(api, synology, jmora, soporte):
    for numero in range(1, 14):
        Ticket.objects.create(numero=numero, departamento=soporte, asignado=jmora)

    texto = preguntar(api, synology, "Mis  Tickets")

    assert len(texto.splitlines()) == 1 + 10 + 1
    assert texto.splitlines()[-1] == "… y 3 más."


def test_it_says_when_the_user_has_no_open_tickets(api, synology, jmora):
    assert preguntar(api, synology, "mis tickets") == "No tienes tickets abiertos."


def test_it_answers_ayuda_with_the_commands(api, synology, jmora):
    texto = preguntar(api, synology, "ayuda")

    assert "ticket 132" in texto and "mis tickets" in texto and "ayuda" in texto


def test_it_says_it_does_not_understand_other_text(api, synology, jmora):
    texto = preguntar(api, synology, "borra todo <http://x|y>")

    assert texto == (
        "No entiendo «borra todo ‹http://x|y›». Escribe «ayuda» para ver lo que puedo hacer."
    )


def test_it_is_in_the_openapi_schema(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    operacion = schema["paths"][URL]["post"]
    assert set(operacion["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert {"200", "401", "422", "502"} <= set(operacion["responses"])


def test_it_answers_a_head_probe_of_its_address(api):
    respuesta = api.head(URL)

    assert respuesta.status_code == 200
