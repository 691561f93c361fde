from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from credenciales import services
from credenciales.models import MiembroUnidad, TipoCredencial
from sso.jwt import jwt_emitir
from sso.models import Unidad, Usuario
from sso.tokens import token_emitir

SECRETO = "S3creto-Muy-Claro!"
LECTURA = ["view_credencial", "view_tipocredencial"]
REVELAR = [*LECTURA, "revelar_credencial"]
EDICION = [
    *REVELAR,
    "add_credencial",
    "change_credencial",
    "delete_credencial",
    "add_tipocredencial",
    "change_tipocredencial",
    "delete_tipocredencial",
]


def con_permisos(usuario, codenames):
    usuario.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="credenciales", codename__in=codenames)
    )
    return Usuario.objects.get(pk=usuario.pk)  # fresh permission cache


@pytest.fixture
def dev(soporte):
    return Unidad.objects.create(departamento=soporte, clave="dev", nombre="Desarrollo")


@pytest.fixture
def ops(soporte):
    return Unidad.objects.create(departamento=soporte, clave="ops", nombre="Operaciones")


@pytest.fixture
def tipo(db):
    return TipoCredencial.objects.create(nombre="Email Corporativo")


@pytest.fixture
def hacer_usuario(soporte):
    def hacer(nombre, permisos, *, departamento=soporte, unidades=(), **extra):
        u = Usuario.objects.create_user(
            username=nombre,
            email=f"{nombre}@example.com",
            password="x",
            departamento=departamento,
            **extra,
        )
        for unidad in unidades:
            MiembroUnidad.objects.create(usuario=u, unidad=unidad)
        return con_permisos(u, permisos)

    return hacer


@pytest.fixture
def usuarios(hacer_usuario, dev, ops, redes):
    return {
        "lector": hacer_usuario("lector", LECTURA, unidades=[dev]),
        "revelador": hacer_usuario("revelador", REVELAR, unidades=[dev]),
        "editor": hacer_usuario("editor", EDICION, unidades=[dev]),
        "otro_departamento": hacer_usuario("otrodep", EDICION, departamento=redes),
        "otra_unidad": hacer_usuario("otraunidad", EDICION, unidades=[ops]),
    }


@pytest.fixture
def credencial(tipo, soporte, dev):
    return services.credencial_crear(
        tipo=tipo,
        departamento=soporte,
        unidad=dev,
        usuario="dev@example.com",
        clave=SECRETO,
        nota="Cuenta principal",
    )


def bearer(usuario, kind="user", scope="read write"):
    """An Authorization header with a token of `kind` for `usuario`."""
    if kind == "user":
        raw = token_emitir(usuario=usuario)[1]
    elif kind == "jwt":
        raw = jwt_emitir(usuario=usuario, operador="example")[0]
    else:
        raw = f"oauth-{usuario.pk}-{scope.replace(' ', '-')}-{timezone.now().timestamp()}"
        get_access_token_model().objects.create(
            user=usuario, token=raw, scope=scope, expires=timezone.now() + timedelta(hours=1)
        )
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
