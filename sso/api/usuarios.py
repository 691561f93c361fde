"""POST /api/UsuarioInterno/get (seed 000, permission `usuarios`)."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers

from ..selectors import usuario_interno_list
from .consumo import ConsumoAPIView
from .schema import consumo_responses


def _sorted_csv(value: str | None) -> str:
    return ",".join(sorted(filter(None, (value or "").split(","))))


class UsuarioInternoGetView(ConsumoAPIView):
    permiso = "usuarios"

    @extend_schema_serializer(component_name="UsuarioInternoFiltro")
    class InputSerializer(serializers.Serializer):
        user = serializers.CharField(required=False, allow_blank=True, max_length=150)
        email = serializers.EmailField(required=False, allow_blank=True)
        departamento = serializers.IntegerField(required=False, allow_null=True, min_value=1)
        id_bitacora_log = serializers.CharField(required=False, allow_blank=True)

    @extend_schema_serializer(component_name="UsuarioInterno")
    class OutputSerializer(serializers.Serializer):
        id_usuario = serializers.IntegerField(source="pk")
        login = serializers.CharField(source="username")
        nombre = serializers.CharField()
        cedula = serializers.CharField()
        tipo_usuario = serializers.CharField()
        status = serializers.CharField()
        accesos = serializers.SerializerMethodField()
        usuario = serializers.CharField(source="username")
        correo = serializers.EmailField(source="email")
        ext = serializers.CharField()
        acceso_ticket = serializers.SerializerMethodField()
        fk_id_departamento = serializers.IntegerField(source="departamento_id", allow_null=True)
        fk_id_rol = serializers.IntegerField(source="rol_id", allow_null=True)
        rol = serializers.CharField(source="rol.nombre", default="")
        jefe = serializers.SerializerMethodField()
        movil = serializers.CharField()
        ultimo_acceso = serializers.DateTimeField(source="last_login", allow_null=True)
        ip_address = serializers.IPAddressField(source="ultima_ip", allow_null=True)
        accesos_sistemas = serializers.SerializerMethodField()
        id_synology = serializers.IntegerField(allow_null=True)

        def get_accesos(self, obj) -> str:
            return ""

        def get_acceso_ticket(self, obj) -> str:
            return "S" if obj.acceso_ticket else "N"

        def get_jefe(self, obj) -> int:
            return 1 if obj.jefe else 0

        def get_accesos_sistemas(self, obj) -> str:
            return _sorted_csv(obj.dominios_sistemas)

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
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        users = usuario_interno_list(
            login=filters.get("user") or None,
            email=filters.get("email") or None,
            departamento_id=filters.get("departamento"),
        )
        data = self.OutputSerializer(users, many=True).data
        return self.ok(data, f"Obtenidos {len(data)} registros de usuarios.")
