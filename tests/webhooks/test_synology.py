"""The transport against a local Synology: exact requests, success, and every kind of failure."""

import logging
import time

import pytest
from werkzeug import Response

from webhooks import synology as transporte
from webhooks.synology import ErrorPasajero, ErrorPermanente

from .conftest import BOT_TOKEN, CANAL_TOKEN, PATH, error, ok_chatbot, query


@pytest.fixture(autouse=True)
def _todo_log(caplog):
    caplog.set_level(logging.DEBUG)


def sin_secretos(caplog, *textos):
    """Nothing we log or raise holds a token (the local NAS's own access log, `werkzeug`, is
    the server side and does)."""
    nuestros = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    assert nuestros
    for texto in (*nuestros, *map(str, textos)):
        assert BOT_TOKEN not in texto
        assert CANAL_TOKEN not in texto


def test_it_posts_to_a_channel_in_synologys_wire_format(synology):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})

    respuesta = transporte.enviar_a_canal(
        token=CANAL_TOKEN, texto="Nuevo ticket #132 & más: <ok>", file_url="https://x.example/a.png"
    )

    assert respuesta.cuerpo == {"success": True}
    (peticion,) = synology.solicitudes()
    assert peticion.path == PATH
    assert peticion.args.to_dict() == query("incoming", CANAL_TOKEN)
    assert synology.payloads() == [
        {"text": "Nuevo ticket #132 & más: <ok>", "file_url": "https://x.example/a.png"}
    ]


def test_it_sends_direct_messages_through_the_chatbot_api_with_the_bot_token(synology):
    synology.espera("chatbot").respond_with_json(ok_chatbot(120))

    respuesta = transporte.enviar_a_usuarios(user_ids=[120], texto="Hola")

    assert synology.payloads() == [{"text": "Hola", "user_ids": [120]}]
    assert transporte.entregados(respuesta) == {120}


def test_it_lists_the_bots_users_without_deleted_ones(synology):
    synology.espera("user_list").respond_with_json(
        {
            "success": True,
            "data": {
                "users": [
                    {"user_id": 4, "username": "jmora", "deleted": False},
                    {"user_id": 5, "username": "viejo", "deleted": True},
                ]
            },
        }
    )

    usuarios = transporte.usuarios_del_bot()

    assert [u["user_id"] for u in usuarios] == [4]
    (peticion,) = synology.solicitudes()
    assert peticion.method == "GET" and peticion.args.to_dict() == query("user_list", BOT_TOKEN)


def test_it_treats_a_200_with_success_false_as_a_permanent_failure_for_a_bad_token(
    synology, caplog
):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json(error(404, "bot not legal"))

    with pytest.raises(ErrorPermanente) as excinfo:
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")

    assert excinfo.value.codigo == 404
    assert len(synology.solicitudes()) == 1
    sin_secretos(caplog, excinfo.value)


def test_it_retries_at_once_when_synology_says_too_fast_and_then_posts(synology):
    for _ in range(2):
        synology.espera("incoming", token=CANAL_TOKEN).respond_with_json(
            error(411, "create post too fast")
        )
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})

    transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")

    assert len(synology.solicitudes()) == 3


def test_it_gives_up_after_its_bounded_attempts_with_a_passing_failure(synology, settings):
    settings.SYNOLOGY_REINTENTOS = 1
    synology.server.expect_request(
        PATH, method="POST", query_string=query("incoming", CANAL_TOKEN)
    ).respond_with_json(error(411, "create post too fast"))

    with pytest.raises(ErrorPasajero) as excinfo:
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")

    assert excinfo.value.codigo == 411
    assert len(synology.solicitudes()) == 2


@pytest.mark.parametrize("codigo", [100, 102, 999])
def test_it_treats_busy_or_unknown_synology_errors_as_passing(synology, codigo):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json(error(codigo))

    with pytest.raises(ErrorPasajero):
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")
    # The message may have been posted: not repeated here (the outbox decides).
    assert len(synology.solicitudes()) == 1


@pytest.mark.parametrize("codigo", [101, 117, 120, 407, 409, 410])
def test_it_treats_refused_payloads_as_permanent(synology, codigo):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json(error(codigo))

    with pytest.raises(ErrorPermanente):
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")


def test_it_does_not_repeat_a_post_after_a_5xx(synology, caplog):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_data("boom", status=500)

    with pytest.raises(ErrorPasajero) as excinfo:
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")

    assert "HTTP 500" in str(excinfo.value)
    assert len(synology.solicitudes()) == 1
    sin_secretos(caplog, excinfo.value)


def test_it_repeats_a_post_refused_with_503(synology):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_data("busy", status=503)
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_json({"success": True})

    transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")

    assert len(synology.solicitudes()) == 2


def test_it_repeats_reads_after_a_5xx(synology):
    synology.espera("user_list").respond_with_data("boom", status=502)
    synology.espera("user_list").respond_with_json({"success": True, "data": {"users": []}})

    assert transporte.usuarios_del_bot() == []
    assert len(synology.solicitudes()) == 2


def test_it_treats_4xx_as_permanent(synology):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_data("no", status=403)

    with pytest.raises(ErrorPermanente):
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")


def test_it_treats_an_answer_that_is_not_json_as_passing(synology):
    synology.espera("incoming", token=CANAL_TOKEN).respond_with_data("<html>proxy</html>")

    with pytest.raises(ErrorPasajero):
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")


def test_it_gives_up_on_a_slow_synology_without_posting_twice(synology, settings, caplog):
    settings.SYNOLOGY_TIMEOUT = 0.2

    llamadas = []

    def lento(request):
        llamadas.append(request.path)
        time.sleep(0.6)
        return Response('{"success": true}', content_type="application/json")

    synology.espera("incoming", token=CANAL_TOKEN).respond_with_handler(lento)

    with pytest.raises(ErrorPasajero) as excinfo:
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")

    assert excinfo.value.sin_entregar is False
    assert llamadas == [PATH]
    sin_secretos(caplog, excinfo.value)


def test_it_retries_and_then_fails_passing_when_the_connection_is_refused(
    synology, settings, puerto_cerrado, caplog
):
    settings.SYNOLOGY_URL = f"http://127.0.0.1:{puerto_cerrado}"

    with pytest.raises(ErrorPasajero) as excinfo:
        transporte.enviar_a_usuarios(user_ids=[1], texto="x")

    assert excinfo.value.sin_entregar is True
    assert "attempt 3 of 3" in caplog.text
    sin_secretos(caplog, excinfo.value)


def test_it_refuses_to_call_without_a_configured_nas(settings):
    settings.SYNOLOGY_URL = ""

    with pytest.raises(ErrorPermanente):
        transporte.enviar_a_canal(token=CANAL_TOKEN, texto="x")


def test_it_redacts_the_token_in_every_form_it_takes_in_a_url():
    token = 'a b"&c'
    for forma in (token, "a%20b%22%26c", "%22a%20b%22%26c%22"):
        assert "a b" not in transporte.redactar(f"x {forma} y", token).replace("%20", " ")
