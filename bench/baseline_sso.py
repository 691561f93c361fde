"""The baseline for GET /api/SSO/refreshUserToken: only the SQL that endpoint cannot avoid.

A DRF view behind the same middleware as the portal, with no consumer check, no ORM and no
serializers. Four statements through a plain psycopg cursor on a connection kept per thread
(autocommit, psycopg's defaults, so repeated statements are prepared on the server):

1. SELECT the token row by id (live and unexpired), joined to its user for the answer; the
   SHA-256 of the Bearer's secret is compared with the stored one in constant time;
2. UPDATE it revoked (guarded by `revocado IS NULL`, so two concurrent renewals give one);
3. INSERT the new token (same user, system and device);
4. INSERT the audit row.

The answer is the portal's envelope A with the same `data` (id, code, name, email, phone, token).
"""

import hashlib
import hmac
import secrets
import time

from django.conf import settings
from psycopg.types.json import Jsonb
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .baseline import _connection

SELECT_TOKEN = """
SELECT t.secreto_hash, t.usuario_id, t.sistema_id, t.dispositivo_id,
       u.username, u.nombre, u.email, u.phone, u.movil
  FROM sso_tokenusuario t JOIN sso_usuario u ON u.id = t.usuario_id
 WHERE t.id = %s AND t.revocado IS NULL AND t.expira > now() AND u.is_active
"""

REVOKE_TOKEN = "UPDATE sso_tokenusuario SET revocado = now() WHERE id = %s AND revocado IS NULL"

INSERT_TOKEN = """
INSERT INTO sso_tokenusuario
    (usuario_id, secreto_hash, sistema_id, dispositivo_id, ip, creado, ultimo_uso, expira,
     revocado)
VALUES (%s, %s, %s, %s, %s, now(), NULL, now() + make_interval(hours => %s), NULL)
RETURNING id
"""

INSERT_AUDIT = """
INSERT INTO sso_bitacora
    (creado, endpoint, metodo, estado, ip, duracion_ms, consumidor_id, usuario_id, id_padre,
     resumen)
VALUES (now(), %s, %s, 200, %s, %s, %s, %s, NULL, %s)
RETURNING id
"""

_INVALID = {
    "data": {"authenticated": False},
    "status": "error",
    "message": "Token de usuario inválido o vencido.",
    "code": 401,
}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class BaselineRefreshUserTokenView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        started = time.perf_counter()
        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        raw = header[1] if len(header) == 2 and header[0].lower() == "bearer" else ""
        ident, _, secret = raw.partition("|")
        if not (ident.isascii() and ident.isdigit() and len(ident) <= 18 and secret):
            return Response(_INVALID, status=401)
        ip = request.META.get("REMOTE_ADDR")
        with _connection().cursor() as cursor:
            cursor.execute(SELECT_TOKEN, (int(ident),))
            row = cursor.fetchone()
            if row is None or not hmac.compare_digest(_sha256(secret), row[0]):
                return Response(_INVALID, status=401)
            _, usuario_id, sistema_id, dispositivo_id, login, nombre, email, phone, movil = row
            cursor.execute(REVOKE_TOKEN, (int(ident),))
            if cursor.rowcount != 1:  # renewed by someone else meanwhile
                return Response(_INVALID, status=401)
            nuevo = secrets.token_urlsafe(32)
            cursor.execute(
                INSERT_TOKEN,
                (
                    usuario_id,
                    _sha256(nuevo),
                    sistema_id,
                    dispositivo_id,
                    ip,
                    settings.USER_TOKEN_LIFETIME_HOURS,
                ),
            )
            token_id = cursor.fetchone()[0]
            cursor.execute(
                INSERT_AUDIT,
                (
                    request.path,
                    request.method,
                    ip,
                    round((time.perf_counter() - started) * 1000, 3),
                    settings.BENCH_CONSUMIDOR_ID,
                    usuario_id,
                    Jsonb({}),
                ),
            )
            entry_id = cursor.fetchone()[0]
        data = {
            "id": usuario_id,
            "code": "",
            "name": nombre or login,
            "email": email,
            "phone": phone or movil,
            "token": f"{token_id}|{nuevo}",
        }
        return Response(
            {
                "data": data,
                "status": "ok",
                "message": "Usuario logueado.",
                "code": 200,
                "id_bitacora_log": entry_id,
            }
        )
