"""Integra (seed 002, envelope C): the credential vault under /api/integra/.

Bearer authentication with any of the three kinds of token. OAuth2 tokens need `read` to list
and `write` to change or reveal; user tokens and JWTs are limited only by the user's Django
permissions (`view_`, `add_`, `change_`, `delete_credencial`, `revelar_credencial` and the same
for `tipocredencial`) and by which departments/units they see (`selectors`). A credential the
user cannot see answers 404, as one that does not exist. `clave` is always `"********"`; only
`POST credenciales/{id}/revelar` answers it in clear, after writing its audit row.
"""

import time

from django.db import transaction
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from sso import bitacora
from sso.api.auth import AuthAPIView
from sso.api.envelopes import ENVELOPE_C, ApiError
from sso.api.schema import integra_responses
from sso.api.scopes import requiere_scope
from sso.models import Departamento, Unidad

from . import selectors, services
from .models import Credencial, MiembroUnidad, TipoCredencial

MASCARA = "********"
LIMITE_MAXIMO = 200
CUENTAS_REGISTRADAS = "Cuentas registradas"
CUENTA_REGISTRADA = "Cuenta registrada"
CUENTA_ACTUALIZADA = "Cuenta actualizada"
CUENTA_ELIMINADA = "Cuenta eliminada"
CLAVE_REVELADA = "Clave revelada"
TIPOS = "Tipos de cuentas"
TIPO_REGISTRADO = "Tipo registrado"
TIPO_ACTUALIZADO = "Tipo actualizado"
TIPO_ELIMINADO = "Tipo eliminado"
CUENTA_NO_ENCONTRADA = "Cuenta no encontrada."
TIPO_NO_ENCONTRADO = "Tipo no encontrado."
MOTIVO_REQUERIDO = "Indique el motivo para revelar la clave."
FUERA_DE_ALCANCE = "No puede gestionar cuentas de ese departamento o unidad."
CLAVE_ILEGIBLE = "La clave guardada no se puede leer; avise al administrador."


def tipo_en_uso(cuantas: int) -> str:
    return f"El tipo está en uso por {cuantas} cuenta(s); no se eliminó."


def credencial_json(c: Credencial) -> dict:
    unidad = c.unidad
    return {
        "id": c.pk,
        "tipoId": c.tipo_id,
        "tipoNombre": c.tipo.nombre,
        "departamentoId": c.departamento_id,
        "departamentoNombre": c.departamento.nombre,
        "unidadId": c.unidad_id,
        "unidadClave": unidad.clave if unidad else None,
        "unidadNombreCompleto": f"{c.departamento.nombre} - {unidad.nombre}" if unidad else None,
        "usuario": c.usuario,
        "clave": MASCARA,
        "nota": c.nota,
        "url": c.url,
        "vence": c.vence.isoformat() if c.vence else None,
        "creado": c.creado.replace(tzinfo=None, microsecond=0).isoformat(),
        "actualizado": c.actualizado.replace(tzinfo=None, microsecond=0).isoformat(),
    }


# --- Bodies ---------------------------------------------------------------------------------


class CredencialEntrada(serializers.Serializer):
    usuario = serializers.CharField(max_length=255, trim_whitespace=True)
    clave = serializers.CharField(max_length=4000, trim_whitespace=False, required=False)
    idTipoCuenta = serializers.IntegerField()
    idDepartamento = serializers.IntegerField()
    idUnidad = serializers.IntegerField(required=False, allow_null=True)
    nota = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    url = serializers.URLField(required=False, allow_blank=True, default="", max_length=500)
    vence = serializers.DateField(required=False, allow_null=True, default=None)


class TipoEntrada(serializers.Serializer):
    nombre = serializers.CharField(max_length=120)


class CuentaSalida(serializers.Serializer):
    id = serializers.IntegerField()
    tipoId = serializers.IntegerField()
    tipoNombre = serializers.CharField()
    departamentoId = serializers.IntegerField()
    departamentoNombre = serializers.CharField()
    unidadId = serializers.IntegerField(allow_null=True)
    unidadClave = serializers.CharField(allow_null=True)
    unidadNombreCompleto = serializers.CharField(allow_null=True)
    usuario = serializers.CharField()
    clave = serializers.CharField(help_text='Always "********".')
    nota = serializers.CharField()
    url = serializers.CharField()
    vence = serializers.DateField(allow_null=True)
    creado = serializers.DateTimeField()
    actualizado = serializers.DateTimeField()


class ClaveSalida(serializers.Serializer):
    id = serializers.IntegerField()
    clave = serializers.CharField()


class TipoSalida(serializers.Serializer):
    id = serializers.IntegerField()
    nombre = serializers.CharField()


class RevelarEntrada(serializers.Serializer):
    motivo = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


# --- Permissions ----------------------------------------------------------------------------


class PermisoModelo(BasePermission):
    """The Django permission the view names for the request's method."""

    message = "No autorizado para este recurso."

    def has_permission(self, request, view):
        permiso = view.permisos.get(request.method)
        if permiso is None:
            return False
        selectors.permisos_cargar(request.user)  # one statement for every check to come
        return request.user.has_perm(permiso)


class PorMetodoScope(BasePermission):
    """OAuth2 tokens: `read` for GET, `write` for anything else."""

    message = requiere_scope("read").message
    _read, _write = requiere_scope("read")(), requiere_scope("write")()

    def has_permission(self, request, view):
        permiso = self._read if request.method == "GET" else self._write
        return permiso.has_permission(request, view)


# --- Views ----------------------------------------------------------------------------------

C = {"data": None, "success": True}


def _ejemplo(nombre, valor, *, request=False, status=200):
    if request:
        return OpenApiExample(nombre, value=valor, request_only=True)
    return OpenApiExample(nombre, value=valor, response_only=True, status_codes=[str(status)])


@method_decorator(sensitive_post_parameters("clave"), name="dispatch")
class IntegraAPIView(AuthAPIView):
    envelope = ENVELOPE_C
    permission_classes = [IsAuthenticated, PorMetodoScope, PermisoModelo]
    permisos: dict[str, str] = {}
    # True where the answer must not leave without its bitácora row (see RevelarView).
    bitacora_estricta = False

    def dispatch(self, request, *args, **kwargs):
        self._started = time.perf_counter()
        return super().dispatch(request, *args, **kwargs)

    def ok(self, data=None, message: str = "", status_code: int = 200) -> Response:
        return Response(ENVELOPE_C.success(data=data, message=message), status=status_code)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        user = getattr(request, "_user", None)
        body = getattr(request, "_full_data", None)
        # `redact` replaces `clave` (and any secret-like key) before the row is written.
        bitacora.bitacora_de_solicitud(
            request,
            estado=response.status_code,
            inicio=getattr(self, "_started", time.perf_counter()),
            usuario_id=user.pk if getattr(user, "is_authenticated", False) else None,
            body=body if isinstance(body, dict) else None,
            estricto=self.bitacora_estricta,
        )
        return response

    def credencial(self, id: int) -> Credencial:
        credencial = selectors.credenciales_visibles(self.request.user).filter(pk=id).first()
        if credencial is None:
            raise ApiError(404, CUENTA_NO_ENCONTRADA)
        return credencial

    def tipo(self, id: int) -> TipoCredencial:
        tipo = TipoCredencial.objects.filter(pk=id).first()
        if tipo is None:
            raise ApiError(404, TIPO_NO_ENCONTRADO)
        return tipo

    @sensitive_variables("datos")
    def campos_credencial(self, datos: dict) -> dict:
        """The service's arguments from a valid body; 422 for unknown ids, 403 outside the
        user's departments/units."""
        errores = {}
        tipo = TipoCredencial.objects.filter(pk=datos["idTipoCuenta"]).first()
        if tipo is None:
            errores["idTipoCuenta"] = ["Tipo de cuenta inexistente."]
        departamento = Departamento.objects.filter(pk=datos["idDepartamento"]).first()
        if departamento is None:
            errores["idDepartamento"] = ["Departamento inexistente."]
        unidad = None
        if datos.get("idUnidad") is not None:
            unidad = Unidad.objects.filter(pk=datos["idUnidad"]).first()
            if unidad is None or unidad.departamento_id != datos["idDepartamento"]:
                errores["idUnidad"] = ["Unidad inexistente en ese departamento."]
        if errores:
            raise ApiError(422, ENVELOPE_C.message_for(422), errors=errores)
        usuario = self.request.user
        if not selectors.puede_ver_todas(usuario):
            fuera = departamento.pk != usuario.departamento_id or (
                unidad is not None
                and not usuario.jefe
                and not MiembroUnidad.objects.filter(usuario=usuario, unidad=unidad).exists()
            )
            if fuera:
                raise ApiError(403, FUERA_DE_ALCANCE)
        return {
            "tipo": tipo,
            "departamento": departamento,
            "unidad": unidad,
            "usuario": datos["usuario"],
            "nota": datos["nota"],
            "url": datos["url"],
            "vence": datos["vence"],
        }


def _entero(request, nombre: str) -> int | None:
    valor = request.query_params.get(nombre)
    if valor in (None, ""):
        return None
    try:
        return int(valor)
    except ValueError:
        raise ApiError(
            422, ENVELOPE_C.message_for(422), errors={nombre: ["Debe ser un entero."]}
        ) from None


_EJEMPLO_CUENTA = {
    "id": 42,
    "tipoId": 1,
    "tipoNombre": "Email Corporativo",
    "departamentoId": 5,
    "departamentoNombre": "Tecnología",
    "unidadId": 3,
    "unidadClave": "TI-001",
    "unidadNombreCompleto": "Tecnología - Desarrollo",
    "usuario": "dev@example.com",
    "clave": MASCARA,
    "nota": "Cuenta principal de desarrollo",
    "url": "",
    "vence": None,
    "creado": "2025-01-15T10:30:00",
    "actualizado": "2025-02-20T14:45:00",
}
_EJEMPLO_409 = {
    "data": None,
    "message": "El tipo está en uso por 3 cuenta(s); no se eliminó.",
    "success": False,
    "errors": {"cuentas": ["3"]},
}
_EJEMPLO_ENTRADA = {
    "usuario": "dev@example.com",
    "clave": "SecurePass123!",
    "idTipoCuenta": 1,
    "idDepartamento": 5,
    "idUnidad": 3,
    "nota": "Cuenta principal de desarrollo",
}


class CredencialesView(IntegraAPIView):
    permisos = {"GET": "credenciales.view_credencial", "POST": "credenciales.add_credencial"}

    @extend_schema(
        operation_id="integra_credenciales_listar",
        tags=["Integra"],
        parameters=[
            OpenApiParameter("idTipoCuenta", int, description="Credential type id."),
            OpenApiParameter("idDepartamento", int, description="Department id."),
            OpenApiParameter("idUnidad", int, description="Unit id."),
            OpenApiParameter("buscar", str, description="Text in the account or the note."),
            OpenApiParameter(
                "limite",
                int,
                description="Optional page size (1 to 200). Without it, every credential is "
                'answered, as in the seed. With it, a `Link: <…>; rel="next"` header points '
                "to the next page while there is one.",
            ),
            OpenApiParameter(
                "despues",
                int,
                description="Optional: the `id` of the last credential of the previous page "
                "(keyset pagination, in the list's order: department, account, id).",
            ),
        ],
        responses=integra_responses("IntegraCuentas", CuentaSalida(many=True)),
        examples=[
            _ejemplo(
                "Cuentas",
                {"data": [_EJEMPLO_CUENTA], "message": CUENTAS_REGISTRADAS, "success": True},
            ),
        ],
    )
    def get(self, request):
        qs = selectors.credenciales_para_usuario(
            usuario=request.user,
            tipo_id=_entero(request, "idTipoCuenta"),
            departamento_id=_entero(request, "idDepartamento"),
            unidad_id=_entero(request, "idUnidad"),
            texto=request.query_params.get("buscar", "")[:200],
        )
        limite = _entero(request, "limite")
        if limite is None:
            return self.ok([credencial_json(c) for c in qs], CUENTAS_REGISTRADAS)
        if not 1 <= limite <= LIMITE_MAXIMO:
            raise ApiError(
                422,
                ENVELOPE_C.message_for(422),
                errors={"limite": [f"Debe estar entre 1 y {LIMITE_MAXIMO}."]},
            )
        despues = _entero(request, "despues")
        if despues is not None:
            try:
                qs = selectors.credenciales_despues_de(qs, despues)
            except Credencial.DoesNotExist:
                raise ApiError(
                    422, ENVELOPE_C.message_for(422), errors={"despues": ["Cuenta no encontrada."]}
                ) from None
        pagina = list(qs[: limite + 1])
        response = self.ok([credencial_json(c) for c in pagina[:limite]], CUENTAS_REGISTRADAS)
        if len(pagina) > limite:
            siguiente = request.GET.copy()
            siguiente["despues"] = str(pagina[limite - 1].pk)
            url = request.build_absolute_uri(f"{request.path}?{siguiente.urlencode()}")
            response["Link"] = f'<{url}>; rel="next"'
        return response

    @extend_schema(
        operation_id="integra_credenciales_crear",
        tags=["Integra"],
        request=CredencialEntrada,
        responses=integra_responses("IntegraCuentaRegistrada", None, {403: FUERA_DE_ALCANCE}),
        examples=[
            _ejemplo("Cuenta", _EJEMPLO_ENTRADA, request=True),
            _ejemplo("Cuenta registrada", {**C, "message": CUENTA_REGISTRADA}),
        ],
    )
    @method_decorator(sensitive_variables("datos"))
    def post(self, request):
        datos = self.datos(CredencialEntrada)
        if not datos.get("clave"):
            raise ApiError(
                422, ENVELOPE_C.message_for(422), errors={"clave": ["Este campo es requerido."]}
            )
        services.credencial_crear(
            **self.campos_credencial(datos),
            clave=datos["clave"],
            por=request.user,
            ip=bitacora.client_ip(request),
        )
        return self.ok(None, CUENTA_REGISTRADA)


class CredencialView(IntegraAPIView):
    permisos = {"PUT": "credenciales.change_credencial", "DELETE": "credenciales.delete_credencial"}

    @extend_schema(
        operation_id="integra_credenciales_editar",
        tags=["Integra"],
        request=CredencialEntrada,
        responses=integra_responses("IntegraCuentaActualizada", None, {404: CUENTA_NO_ENCONTRADA}),
        description="Same body as creating; without `clave` (or with `********`) the secret "
        "is kept. A changed secret keeps the earlier one in the history.",
        examples=[
            _ejemplo(
                "Cuenta",
                {**_EJEMPLO_ENTRADA, "clave": "NewSecurePass456!", "nota": "Password actualizado"},
                request=True,
            ),
            _ejemplo("Cuenta actualizada", {**C, "message": CUENTA_ACTUALIZADA}),
        ],
    )
    @method_decorator(sensitive_variables("datos", "clave"))
    def put(self, request, id: int):
        credencial = self.credencial(id)
        datos = self.datos(CredencialEntrada)
        clave = datos.get("clave")
        if clave == MASCARA or clave == "":
            clave = None
        services.credencial_editar(
            credencial=credencial,
            **self.campos_credencial(datos),
            clave=clave,
            por=request.user,
            ip=bitacora.client_ip(request),
        )
        return self.ok(None, CUENTA_ACTUALIZADA)

    @extend_schema(
        operation_id="integra_credenciales_borrar",
        tags=["Integra"],
        request=None,
        responses=integra_responses("IntegraCuentaEliminada", None, {404: CUENTA_NO_ENCONTRADA}),
        examples=[_ejemplo("Cuenta eliminada", {**C, "message": CUENTA_ELIMINADA})],
    )
    def delete(self, request, id: int):
        services.credencial_borrar(
            credencial=self.credencial(id), por=request.user, ip=bitacora.client_ip(request)
        )
        return self.ok(None, CUENTA_ELIMINADA)


class RevelarView(IntegraAPIView):
    permisos = {"POST": "credenciales.revelar_credencial"}

    # The audit row and the request's bitácora row commit together: one commit (one WAL flush)
    # per reveal instead of two, and the bitácora row without a savepoint of its own. The
    # reveal's transaction becomes a savepoint, so a failed audit insert still reveals nothing;
    # a bitácora row that cannot be written rolls the reveal back (500, nothing revealed); the
    # answer leaves the view only once both rows are committed.
    bitacora_estricta = True

    def dispatch(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="integra_credenciales_revelar",
        tags=["Integra"],
        request=RevelarEntrada,
        responses=integra_responses(
            "IntegraClaveRevelada",
            ClaveSalida(),
            {404: CUENTA_NO_ENCONTRADA, 409: CLAVE_ILEGIBLE},
        ),
        description="The secret in clear, after writing the audit row (who, when, IP, reason). "
        "`motivo` is required when CREDENCIALES_MOTIVO_OBLIGATORIO is on. A stored secret that "
        "does not decrypt (tampered with, or under a key no longer configured) answers 409 and "
        "reveals nothing.",
        examples=[
            _ejemplo("Motivo", {"motivo": "Soporte al cliente"}, request=True),
            _ejemplo(
                "Clave",
                {
                    "data": {"id": 42, "clave": "SecurePass123!"},
                    "message": CLAVE_REVELADA,
                    "success": True,
                },
            ),
        ],
    )
    @method_decorator(sensitive_variables("clave"))
    def post(self, request, id: int):
        body = request.data if request.body else {}
        if not isinstance(body, dict):
            raise ApiError(400, ENVELOPE_C.message_for(400))
        datos = RevelarEntrada(data=body)
        datos.is_valid(raise_exception=True)
        try:
            clave = services.credencial_revelar_visible(
                pk=id,
                usuario=request.user,
                ip=bitacora.client_ip(request),
                motivo=datos.validated_data["motivo"],
                en_transaccion=True,  # dispatch's, committed before the answer leaves
            )
        except services.MotivoRequerido:
            raise ApiError(422, MOTIVO_REQUERIDO, errors={"motivo": [MOTIVO_REQUERIDO]}) from None
        except Credencial.DoesNotExist:  # or one the user does not see: the same answer
            raise ApiError(404, CUENTA_NO_ENCONTRADA) from None
        except services.ClaveIlegible:
            raise ApiError(409, CLAVE_ILEGIBLE) from None
        response = self.ok({"id": id, "clave": clave}, CLAVE_REVELADA)
        response["Cache-Control"] = "no-store"
        return response


class TiposView(IntegraAPIView):
    permisos = {"GET": "credenciales.view_tipocredencial"}

    @extend_schema(
        operation_id="integra_tipos_listar",
        tags=["Integra"],
        responses=integra_responses("IntegraTipos", TipoSalida(many=True)),
        examples=[
            _ejemplo(
                "Tipos",
                {
                    "data": [
                        {"id": 1, "nombre": "Email Corporativo"},
                        {"id": 2, "nombre": "VPN"},
                        {"id": 3, "nombre": "ERP"},
                    ],
                    "message": TIPOS,
                    "success": True,
                },
            )
        ],
    )
    def get(self, request):
        tipos = TipoCredencial.objects.values("id", "nombre")
        return self.ok(list(tipos), TIPOS)


class TipoCrearView(IntegraAPIView):
    permisos = {"POST": "credenciales.add_tipocredencial"}

    @extend_schema(
        operation_id="integra_tipos_crear",
        tags=["Integra"],
        request=TipoEntrada,
        responses=integra_responses("IntegraTipoRegistrado", None),
        examples=[
            _ejemplo("Tipo", {"nombre": "Sistema CRM"}, request=True),
            _ejemplo("Tipo registrado", {**C, "message": TIPO_REGISTRADO}),
        ],
    )
    def post(self, request):
        services.tipo_crear(nombre=self.datos(TipoEntrada)["nombre"])
        return self.ok(None, TIPO_REGISTRADO)


class TipoView(IntegraAPIView):
    permisos = {
        "PUT": "credenciales.change_tipocredencial",
        "DELETE": "credenciales.delete_tipocredencial",
    }

    @extend_schema(
        operation_id="integra_tipos_editar",
        tags=["Integra"],
        request=TipoEntrada,
        responses=integra_responses("IntegraTipoActualizado", None, {404: TIPO_NO_ENCONTRADO}),
        examples=[
            _ejemplo("Tipo", {"nombre": "Sistema CRM v2"}, request=True),
            _ejemplo("Tipo actualizado", {**C, "message": TIPO_ACTUALIZADO}),
        ],
    )
    def put(self, request, id: int):
        tipo = self.tipo(id)
        services.tipo_editar(tipo=tipo, nombre=self.datos(TipoEntrada)["nombre"])
        return self.ok(None, TIPO_ACTUALIZADO)

    @extend_schema(
        operation_id="integra_tipos_borrar",
        tags=["Integra"],
        request=None,
        responses=integra_responses(
            "IntegraTipoEliminado", None, {404: TIPO_NO_ENCONTRADO, 409: _EJEMPLO_409}
        ),
        description="A type that credentials still use is not deleted: 409 with how many.",
        examples=[
            _ejemplo("Tipo eliminado", {**C, "message": TIPO_ELIMINADO}),
        ],
    )
    def delete(self, request, id: int):
        try:
            services.tipo_borrar(tipo=self.tipo(id))
        except services.TipoEnUso as exc:
            raise ApiError(
                409, tipo_en_uso(exc.cuantas), errors={"cuentas": [str(exc.cuantas)]}
            ) from None
        return self.ok(None, TIPO_ELIMINADO)
