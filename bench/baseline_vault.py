"""The baseline for POST /api/integra/credenciales/{id}/revelar: only the SQL a reveal needs.

A DRF view behind the same middleware as the portal, with no authentication class, no ORM and
no serializers, through a plain psycopg cursor on a connection kept per thread
(bench/baseline.py's; psycopg's defaults, so repeated statements are prepared on the server):

1. one SELECT: the user token `"<id>|<secret>"` by id (live, unexpired, user active) joined to
   its user, whether the user holds `view_credencial` and `revelar_credencial` (directly, by a
   group, or as superuser), and the credential if the user sees it (the department's, of no
   unit or of one of the user's units, every unit for the head, every department for staff
   with `ver_todas_credenciales`); the SHA-256 of the secret compared in constant time;
2. in one transaction: INSERT the audit row (`AccesoCredencial`, action `revelar`) and INSERT
   the request's bitácora row, as every Integra call writes one;
3. the secret decrypted (`sso.crypto.decrypt`, AES-256-GCM) only after both rows are written.

The answer is the portal's envelope C with the same `data` (`{"id", "clave"}`).
"""

import hashlib
import hmac
import time

from psycopg.types.json import Jsonb
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from sso import crypto

from .baseline import _connection

_TIENE = """
(u.is_superuser
 OR EXISTS (SELECT 1 FROM sso_usuario_user_permissions up
             WHERE up.usuario_id = u.id AND up.permission_id = p.id)
 OR EXISTS (SELECT 1 FROM auth_group_permissions gp
              JOIN sso_usuario_groups ug ON ug.group_id = gp.group_id
             WHERE ug.usuario_id = u.id AND gp.permission_id = p.id))
"""

SELECT_REVELAR = f"""
SELECT t.secreto_hash, u.id,
       (SELECT count(*) FROM auth_permission p
          JOIN django_content_type ct ON ct.id = p.content_type_id
         WHERE ct.app_label = 'credenciales'
           AND p.codename IN ('view_credencial', 'revelar_credencial') AND {_TIENE}) = 2,
       c.id, c.departamento_id, c.unidad_id, c.usuario, c.clave
  FROM sso_tokenusuario t
  JOIN sso_usuario u ON u.id = t.usuario_id
  LEFT JOIN credenciales_credencial c ON c.id = %s AND (
        (u.is_staff AND EXISTS (
            SELECT 1 FROM auth_permission p JOIN django_content_type ct
                ON ct.id = p.content_type_id
             WHERE ct.app_label = 'credenciales' AND p.codename = 'ver_todas_credenciales'
               AND {_TIENE}))
        OR (c.departamento_id = u.departamento_id AND (
            c.unidad_id IS NULL OR u.jefe OR EXISTS (
                SELECT 1 FROM credenciales_miembrounidad m
                 WHERE m.usuario_id = u.id AND m.unidad_id = c.unidad_id))))
 WHERE t.id = %s AND t.revocado IS NULL AND t.expira > now() AND u.is_active
"""  # noqa: S608 - constant text, no input

INSERT_ACCESO = """
INSERT INTO credenciales_accesocredencial
    (usuario_id, credencial_id, credencial_descripcion, accion, momento, ip, motivo)
VALUES (%s, %s, %s, 'revelar', now(), %s, %s)
"""

INSERT_BITACORA = """
INSERT INTO sso_bitacora
    (creado, endpoint, metodo, estado, ip, duracion_ms, consumidor_id, usuario_id, id_padre,
     resumen)
VALUES (now(), %s, %s, 200, %s, %s, NULL, %s, NULL, %s)
"""

_AD = "credenciales.credencial.clave"  # the field's associated data (model and column)


def _error(status: int, message: str) -> Response:
    return Response({"data": None, "message": message, "success": False}, status=status)


class BaselineRevelarView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request, id: int):
        started = time.perf_counter()
        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        raw = header[1] if len(header) == 2 and header[0].lower() == "bearer" else ""
        ident, _, secret = raw.partition("|")
        if not (ident.isascii() and ident.isdigit() and len(ident) <= 18 and secret):
            return _error(401, "No autenticado.")
        body = request.data if request.body else {}
        motivo = str(body.get("motivo", ""))[:500] if isinstance(body, dict) else ""
        ip = request.META.get("REMOTE_ADDR")
        conn = _connection()
        with conn.cursor() as cursor:
            cursor.execute(SELECT_REVELAR, (id, int(ident)))
            row = cursor.fetchone()
            if row is None or not hmac.compare_digest(
                hashlib.sha256(secret.encode()).hexdigest(), row[0]
            ):
                return _error(401, "No autenticado.")
            _, usuario_id, permitido, pk, departamento, unidad, cuenta, guardada = row
            if not permitido:
                return _error(403, "No autorizado para este recurso.")
            if pk is None:
                return _error(404, "Cuenta no encontrada.")
            with conn.transaction():
                cursor.execute(
                    INSERT_ACCESO,
                    (usuario_id, pk, f"{pk} {departamento}/{unidad} {cuenta}"[:400], ip, motivo),
                )
                cursor.execute(
                    INSERT_BITACORA,
                    (
                        request.path,
                        request.method,
                        ip,
                        round((time.perf_counter() - started) * 1000, 3),
                        usuario_id,
                        Jsonb({"body": {"motivo": motivo}} if motivo else {}),
                    ),
                )
        clave = crypto.decrypt(guardada, _AD)
        response = Response(
            {"data": {"id": pk, "clave": clave}, "message": "Clave revelada", "success": True}
        )
        response["Cache-Control"] = "no-store"
        return response
