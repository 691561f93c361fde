"""The baseline for POST /api/UsuarioInterno/get: only the SQL that endpoint cannot avoid.

A DRF view behind the same middleware as the portal, with no consumer check, no ORM and no
serializers: one SELECT of the users and one INSERT of the audit row, through a plain psycopg
cursor on a connection kept per thread, answering the same envelope A JSON. The connection has
psycopg's defaults, so a statement run five times is prepared on the server and no longer
planned per request (Django turns that off unless DATABASES OPTIONS turn it on).
"""

import threading
import time

import psycopg
from django.conf import settings
from psycopg.types.json import Jsonb
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

SELECT_USERS = """
SELECT u.id, u.username, u.nombre, u.cedula, u.tipo_usuario, u.is_active, u.email, u.ext,
       u.acceso_ticket, u.departamento_id, u.rol_id, r.nombre, u.jefe, u.movil, u.last_login,
       host(u.ultima_ip),
       (SELECT STRING_AGG(s.dominio, ',' ORDER BY s.dominio)
          FROM sso_usuario_accesos_sistemas a JOIN sso_sistema s ON s.id = a.sistema_id
         WHERE a.usuario_id = u.id),
       u.id_synology
  FROM sso_usuario u LEFT JOIN sso_rol r ON r.id = u.rol_id
 WHERE {where}
 ORDER BY u.username
"""

INSERT_ENTRY = """
INSERT INTO sso_bitacora
    (creado, endpoint, metodo, estado, ip, duracion_ms, consumidor_id, usuario_id, id_padre,
     resumen)
VALUES (now(), %s, %s, 200, %s, %s, %s, NULL, NULL, %s)
RETURNING id
"""

_local = threading.local()
_datetime = serializers.DateTimeField()  # the portal's datetime format, time zone included


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or conn.broken:
        db = settings.DATABASES["default"]
        conn = psycopg.connect(
            dbname=db["NAME"],
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            autocommit=True,
        )
        _local.conn = conn
    return conn


def _user(row) -> dict:
    (pk, login, nombre, cedula, tipo, active, email, ext, ticket, dep, rol_id, rol, jefe,
     movil, last_login, ip, dominios, synology) = row  # fmt: skip
    return {
        "id_usuario": pk,
        "login": login,
        "nombre": nombre,
        "cedula": cedula,
        "tipo_usuario": tipo,
        "status": "ACTIVO" if active else "INACTIVO",
        "accesos": "",
        "usuario": login,
        "correo": email,
        "ext": ext,
        "acceso_ticket": "S" if ticket else "N",
        "fk_id_departamento": dep,
        "fk_id_rol": rol_id,
        "rol": rol or "",
        "jefe": 1 if jefe else 0,
        "movil": movil,
        "ultimo_acceso": _datetime.to_representation(last_login),
        "ip_address": ip,
        "accesos_sistemas": dominios or "",
        "id_synology": synology,
    }


class BaselineUsuarioInternoView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        started = time.perf_counter()
        body = request.data if isinstance(request.data, dict) else {}
        where, params = ["TRUE"], []
        if body.get("user"):
            where.append("u.username = %s")
            params.append(str(body["user"]))
        if body.get("email"):
            where.append("UPPER(u.email) = UPPER(%s)")
            params.append(str(body["email"]))
        if body.get("departamento") is not None:
            where.append("u.departamento_id = %s")
            params.append(int(body["departamento"]))
        with _connection().cursor() as cursor:
            cursor.execute(SELECT_USERS.format(where=" AND ".join(where)), params)
            data = [_user(row) for row in cursor.fetchall()]
            cursor.execute(
                INSERT_ENTRY,
                (
                    request.path,
                    request.method,
                    request.META.get("REMOTE_ADDR"),
                    round((time.perf_counter() - started) * 1000, 3),
                    settings.BENCH_CONSUMIDOR_ID,
                    Jsonb({"body": body} if body else {}),
                ),
            )
            entry_id = cursor.fetchone()[0]
        return Response(
            {
                "data": data,
                "status": "ok",
                "message": f"Obtenidos {len(data)} registros de usuarios.",
                "code": 200,
                "id_bitacora_log": entry_id,
            }
        )
