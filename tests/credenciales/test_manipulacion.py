"""A stored ciphertext altered in the raw column: every read of it fails closed."""

import logging

import pytest
from django.db import connection

from credenciales import services
from credenciales.models import AccesoCredencial, Credencial
from sso.crypto import DecryptionError

from .conftest import SECRETO, bearer

BASE = "/api/integra/credenciales"


def _alterar(credencial, como):
    """Rewrite the raw column of `credencial` with `como(stored)`."""
    tabla = connection.ops.quote_name(Credencial._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT clave FROM {tabla} WHERE id = %s", [credencial.pk])  # noqa: S608
        (guardada,) = cursor.fetchone()
        cursor.execute(
            f"UPDATE {tabla} SET clave = %s WHERE id = %s",  # noqa: S608
            [como(guardada), credencial.pk],
        )
    return guardada


def _voltear_un_byte(guardada: str) -> str:
    """The same value with one character of its base64 body changed (same length)."""
    cabeza, cuerpo = guardada.rsplit(":", 1)
    medio = len(cuerpo) // 2
    otro = "A" if cuerpo[medio] != "A" else "B"
    return f"{cabeza}:{cuerpo[:medio]}{otro}{cuerpo[medio + 1 :]}"


ALTERACIONES = {
    "one byte flipped": _voltear_un_byte,
    "truncated": lambda g: g[:-10],
    "unknown key id": lambda g: g.replace(g.split(":")[1], "otra", 1),
    "clear text": lambda g: SECRETO,
}


@pytest.mark.parametrize("alteracion", list(ALTERACIONES))
def test_it_fails_closed_on_a_tampered_ciphertext(api, usuarios, credencial, caplog, alteracion):
    _alterar(credencial, ALTERACIONES[alteracion])
    api.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="credenciales"):
        response = api.post(f"{BASE}/{credencial.pk}/revelar", **bearer(usuarios["revelador"]))
    assert response.status_code == 409
    assert response.json() == {
        "data": None,
        "message": "La clave guardada no se puede leer; avise al administrador.",
        "success": False,
    }
    assert SECRETO not in response.content.decode()
    # Logged, naming the row, without the value.
    registros = [r for r in caplog.records if r.name == "credenciales"]
    assert len(registros) == 1
    assert f"Credential {credencial.pk}" in registros[0].getMessage()
    assert SECRETO not in caplog.text
    # Nothing revealed, so nothing on record as revealed.
    assert not AccesoCredencial.objects.filter(accion="revelar").exists()


def test_it_still_lists_a_credential_whose_ciphertext_was_tampered_with(api, usuarios, credencial):
    _alterar(credencial, _voltear_un_byte)
    response = api.get(BASE, **bearer(usuarios["lector"]))
    assert response.status_code == 200
    assert [c["clave"] for c in response.json()["data"]] == ["********"]


def test_it_raises_from_the_service_and_the_model(usuarios, credencial):
    _alterar(credencial, _voltear_un_byte)
    with pytest.raises(services.ClaveIlegible) as exc:
        services.credencial_revelar(credencial=credencial, usuario=usuarios["revelador"])
    assert exc.value.credencial_id == credencial.pk
    with pytest.raises(DecryptionError):
        Credencial.objects.get(pk=credencial.pk).clave  # noqa: B018
