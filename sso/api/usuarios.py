"""POST /api/UsuarioInterno/get (seed 000, permission `usuarios`)."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers

from ..selectors import usuario_interno_rows
from .consumo import ConsumoAPIView
from .schema import consumo_responses

_datetime = serializers.DateTimeField()


def usuario_interno_dict(row: dict) -> dict:
    """The seed's user dict for one row of `usuario_interno_rows`."""
    return {
        "id_usuario": row["id"],
        "login": row["username"],
        "nombre": row["nombre"],
        "cedula": row["cedula"],
        "tipo_usuario": row["tipo_usuario"],
        "status": "ACTIVO" if row["is_active"] else "INACTIVO",
        "accesos": "",
        "usuario": row["username"],
        "correo": row["email"],
        "ext": row["ext"],
        "acceso_ticket": "S" if row["acceso_ticket"] else "N",
        "fk_id_departamento": row["departamento_id"],
        "fk_id_rol": row["rol_id"],
        "rol": row["rol_nombre"] or "",
        "jefe": 1 if row["jefe"] else 0,
        "movil": row["movil"],
        "ultimo_acceso": _datetime.to_representation(row["last_login"])
        if row["last_login"]
        else None,
        "ip_address": row["ultima_ip"],
        "accesos_sistemas": row["dominios"],
        "id_synology": row["id_synology"],
    }


class UsuarioInternoGetView(ConsumoAPIView):
    permiso = "usuarios"

    @extend_schema_serializer(component_name="UsuarioInternoFiltro")
    class InputSerializer(serializers.Serializer):
        user = serializers.CharField(required=False, allow_blank=True, max_length=150)
        email = serializers.EmailField(required=False, allow_blank=True)
        departamento = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**63 - 1
        )
        id_bitacora_log = serializers.CharField(required=False, allow_blank=True)

    @extend_schema_serializer(component_name="UsuarioInterno")
    class OutputSerializer(serializers.Serializer):
        """The answer's shape, for the schema; `usuario_interno_dict` builds it (faster)."""

        id_usuario = serializers.IntegerField()
        login = serializers.CharField()
        nombre = serializers.CharField()
        cedula = serializers.CharField()
        tipo_usuario = serializers.CharField()
        status = serializers.CharField()
        accesos = serializers.CharField()
        usuario = serializers.CharField()
        correo = serializers.EmailField()
        ext = serializers.CharField()
        acceso_ticket = serializers.ChoiceField(choices=["S", "N"])
        fk_id_departamento = serializers.IntegerField(allow_null=True)
        fk_id_rol = serializers.IntegerField(allow_null=True)
        rol = serializers.CharField()
        jefe = serializers.ChoiceField(choices=[0, 1])
        movil = serializers.CharField()
        ultimo_acceso = serializers.DateTimeField(allow_null=True)
        ip_address = serializers.IPAddressField(allow_null=True)
        accesos_sistemas = serializers.CharField()
        id_synology = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="usuario_interno_get",
        summary="Datos de usuario",
        tags=["Usuarios Cyberfuel"],
        request=InputSerializer,
        responses=consumo_responses("UsuarioInternoGet", OutputSerializer(many=True)),
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={"user": "jmora", "email": "jmora@example.com", "departamento": 1},
            ),
            OpenApiExample(
                "Respuesta",
                response_only=True,
                status_codes=["200"],
                value={
                    "data": [
                        {
                            "id_usuario": 2462,
                            "login": "jmora",
                            "nombre": "Julia Mora",
                            "cedula": "4-0250-0828",
                            "tipo_usuario": "operador",
                            "status": "ACTIVO",
                            "accesos": "",
                            "usuario": "jmora",
                            "correo": "jmora@example.com",
                            "ext": "151",
                            "acceso_ticket": "N",
                            "fk_id_departamento": 1,
                            "fk_id_rol": 21,
                            "rol": "desarrollo",
                            "jefe": 0,
                            "movil": "+506.83576159",
                            "ultimo_acceso": None,
                            "ip_address": None,
                            "accesos_sistemas": "facturaprofesional.example.com",
                            "id_synology": 120,
                        }
                    ],
                    "status": "ok",
                    "message": "Obtenidos 1 registros de usuarios.",
                    "code": 200,
                    "id_bitacora_log": 173,
                },
            ),
        ],
    )
    def post(self, request):
        filters = self.validar(self.InputSerializer, request.data)
        rows = usuario_interno_rows(
            login=filters.get("user") or None,
            email=filters.get("email") or None,
            departamento_id=filters.get("departamento"),
        )
        data = [usuario_interno_dict(row) for row in rows]
        return self.ok(data, f"Obtenidos {len(data)} registros de usuarios.")
