"""POST /api/SSO/access and GET /api/SSO/refreshUserToken (seed 000, permission `sso`)."""

import functools

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers

from ..acceso import (
    AccesoBloqueado,
    CredencialesInvalidas,
    SinAccesoAlSistema,
    acceso_normal,
    acceso_pin,
    acceso_renovar,
    sistema_por_alias,
    usuario_dict,
)
from ..bitacora import client_ip
from ..tokens import parece_token_usuario, token_autenticar
from .bearer import bearer
from .consumo import ConsumoAPIView
from .envelopes import ApiError
from .schema import consumo_responses

CREDENCIALES_INVALIDAS = "Credenciales inválidas."
TOKEN_INVALIDO = "Token de usuario inválido o vencido."  # noqa: S105 - a message
SIN_ACCESO = "El usuario no tiene acceso a este producto."
LOGUEADO = "Usuario logueado."
NO_AUTENTICADO = {"authenticated": False}


def _credenciales_invalidas(message: str = CREDENCIALES_INVALIDAS) -> ApiError:
    # With `data`, envelope A answers a full body, not the consumer-header 401.
    return ApiError(401, message, data=dict(NO_AUTENTICADO))


def _sistema(alias: str):
    sistema = sistema_por_alias(alias=alias)
    if sistema is None:
        raise ApiError(422, "Datos inválidos.", {"product": ["Producto desconocido."]})
    return sistema


def _rechazos(func):
    """Map the services' refusals to envelope A errors."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AccesoBloqueado as exc:
            raise exceptions.Throttled(wait=exc.espera) from exc  # 429 with Retry-After
        except CredencialesInvalidas as exc:
            raise _credenciales_invalidas() from exc
        except SinAccesoAlSistema as exc:
            raise ApiError(403, SIN_ACCESO) from exc

    return wrapper


class UsuarioSSOSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    email = serializers.EmailField()
    phone = serializers.CharField()
    token = serializers.CharField(help_text='"<id>|<secret>", shown once.')


class UsuarioAutenticadoSerializer(UsuarioSSOSerializer):
    authenticated = serializers.BooleanField()


_USUARIO = {
    "id": 139,
    "code": "",
    "name": "Osmel Araya Ruiz",
    "email": "oaraya@example.com",
    "phone": "+50684815739",
    "token": "5|Dz7qYtZrGyhFBUmLTB15y3hmw70jDynANwJF0q1l6fc8724e",
}


def _respuesta(data: dict) -> OpenApiExample:
    return OpenApiExample(
        "Respuesta",
        response_only=True,
        status_codes=["200"],
        value={
            "data": data,
            "status": "ok",
            "message": LOGUEADO,
            "code": 200,
            "id_bitacora_log": "2010959",
        },
    )


def _responses(name: str, serializer) -> dict:
    responses = consumo_responses(name, serializer)
    responses[401] = OpenApiResponse(
        description="Wrong consumer headers (`{message}` only), or wrong user credentials or "
        "user token (full envelope A with `data: {authenticated: false}`).",
        examples=[
            *responses[401].examples,
            OpenApiExample(
                "401 usuario",
                response_only=True,
                status_codes=["401"],
                value={
                    "data": NO_AUTENTICADO,
                    "status": "error",
                    "message": CREDENCIALES_INVALIDAS,
                    "code": 401,
                    "id_bitacora_log": 2010960,
                },
            ),
        ],
    )
    responses[403] = OpenApiResponse(
        responses[403].response,
        "The consumer lacks permission `sso`, or the user may not enter this product.",
    )
    responses[429] = OpenApiResponse(
        responses[429].response,
        "Too many failed sign-ins for this account or client IP (see Retry-After).",
    )
    return responses


class AccesoView(ConsumoAPIView):
    permiso = "sso"

    class InputSerializer(serializers.Serializer):
        product = serializers.CharField(max_length=60)
        user = serializers.CharField(
            required=False, allow_blank=True, max_length=254, help_text="Login or email."
        )
        usuario = serializers.CharField(
            required=False, allow_blank=True, max_length=254, help_text="Email; if no `user`."
        )
        password = serializers.CharField(
            required=False, allow_blank=True, max_length=1024, trim_whitespace=False
        )
        pin = serializers.CharField(
            required=False, allow_blank=True, max_length=64, trim_whitespace=False
        )
        id_device = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**63 - 1
        )
        id_bitacora_log = serializers.CharField(required=False, allow_blank=True)
        modo = serializers.ChoiceField(choices=["normal", "pin"], default="normal")

        def validate(self, attrs):
            errors = {}
            if not (attrs.get("user") or attrs.get("usuario")):
                errors["user"] = ["Indique `user` o `usuario`."]
            if attrs["modo"] == "normal" and not attrs.get("password"):
                errors["password"] = ["Este campo es requerido."]
            if attrs["modo"] == "pin":
                if not attrs.get("pin"):
                    errors["pin"] = ["Este campo es requerido."]
                if attrs.get("id_device") is None:
                    errors["id_device"] = ["Este campo es requerido."]
            if errors:
                raise serializers.ValidationError(errors)
            return attrs

    @extend_schema(
        operation_id="sso_access",
        summary="Inicio de sesión de un usuario en un producto",
        tags=["SSO"],
        request=InputSerializer,
        responses=_responses("SSOAccess", UsuarioAutenticadoSerializer()),
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={
                    "product": "dolores",
                    "user": "oaraya",
                    "password": "Cyberf4231&459",
                    "pin": "",
                    "id_device": 82,
                    "id_bitacora_log": "123456",
                    "usuario": "oaraya@example.com",
                    "modo": "normal",
                },
            ),
            _respuesta({"authenticated": True, **_USUARIO}),
        ],
    )
    @_rechazos
    def post(self, request):
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        datos = params.validated_data
        sistema = _sistema(datos["product"])
        identificador = datos.get("user") or datos.get("usuario")
        ip = client_ip(request)
        if datos["modo"] == "pin":
            acceso = acceso_pin(
                sistema=sistema,
                identificador=identificador,
                pin=datos["pin"],
                id_dispositivo=datos["id_device"],
                ip=ip,
            )
        else:
            acceso = acceso_normal(
                sistema=sistema, identificador=identificador, password=datos["password"], ip=ip
            )
        request.user = acceso.usuario  # the audit row names the user
        data = {
            "authenticated": True,
            **usuario_dict(usuario=acceso.usuario, token=acceso.token_plano),
        }
        return self.ok(data, LOGUEADO)


class RefreshUserTokenView(ConsumoAPIView):
    permiso = "sso"

    class InputSerializer(serializers.Serializer):
        product = serializers.CharField(required=False, allow_blank=True, max_length=60)
        id_bitacora_log = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        operation_id="sso_refresh_user_token",
        summary="Refresca el token de usuario",
        description="`product` and `id_bitacora_log` go in the query string or in a JSON body "
        "(clients send one with GET). `Authorization: Bearer <user token>` is required "
        "besides the consumer headers; the old token stops working.",
        tags=["SSO"],
        request=InputSerializer,
        parameters=[InputSerializer],
        responses=_responses("SSORefreshUserToken", UsuarioSSOSerializer()),
        examples=[
            OpenApiExample(
                "Solicitud",
                request_only=True,
                value={"product": "dolores", "id_bitacora_log": "123456"},
            ),
            _respuesta(_USUARIO),
        ],
    )
    @_rechazos
    def get(self, request):
        raw = bearer(request)
        # Not touched: renewing records the last use when it revokes the token.
        token = token_autenticar(raw, tocar=False) if raw and parece_token_usuario(raw) else None
        if token is None:
            raise _credenciales_invalidas(TOKEN_INVALIDO)
        request.user = token.usuario
        body = request.data if isinstance(request.data, dict) else {}
        params = self.InputSerializer(data={**body, **request.query_params.dict()})
        params.is_valid(raise_exception=True)
        alias = params.validated_data.get("product")
        sistema = token.sistema  # loaded with the token: no lookup when the product is its own
        if alias and (sistema is None or sistema.alias != alias or not sistema.activo):
            sistema = _sistema(alias)
        elif not alias:
            sistema = None
        acceso = acceso_renovar(token=token, sistema=sistema, ip=client_ip(request))
        return self.ok(usuario_dict(usuario=acceso.usuario, token=acceso.token_plano), LOGUEADO)
