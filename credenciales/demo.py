"""The demo organisation of `manage.py demo`: the vault part. Idempotent."""

from django.contrib.auth.models import Group, Permission

from sso.models import Departamento, Usuario

from .models import Credencial, TipoCredencial
from .services import credencial_crear

TIPOS = ["Servidor", "Base de datos", "Correo", "Panel de hosting", "Red / VPN"]
# group -> (permissions, demo logins in it)
GRUPOS = {
    "Bóveda: gestión": (
        [
            "view_credencial",
            "view_tipocredencial",
            "revelar_credencial",
            "add_credencial",
            "change_credencial",
            "delete_credencial",
            "view_accesocredencial",
        ],
        ["jefa.soporte"],
    ),
    "Bóveda: uso": (["view_credencial", "view_tipocredencial", "revelar_credencial"], ["agente1"]),
}


def demo_grupos_boveda() -> None:
    """Two groups of vault rights, the support head managing and an agent revealing; the
    department and unit scoping still applies to both."""
    for nombre, (codenames, logins) in GRUPOS.items():
        grupo, creado = Group.objects.get_or_create(name=nombre)
        if creado:
            grupo.permissions.set(
                Permission.objects.filter(
                    content_type__app_label="credenciales", codename__in=codenames
                )
            )
        for usuario in Usuario.objects.filter(username__in=logins):
            usuario.groups.add(grupo)


def demo_credenciales() -> None:
    """The credential types, and one example credential of the support department (its secret
    is a demo value: the demo is for DEBUG only)."""
    tipos = {nombre: TipoCredencial.objects.get_or_create(nombre=nombre)[0] for nombre in TIPOS}
    demo_grupos_boveda()
    soporte = Departamento.objects.filter(nombre="Soporte").first()
    if soporte is not None and not Credencial.objects.filter(usuario="root-demo").exists():
        credencial_crear(
            tipo=tipos["Servidor"],
            departamento=soporte,
            unidad=None,
            usuario="root-demo",
            clave="demo-no-usar-en-produccion",
            nota="Servidor de pruebas del demo",
            url="https://demo.example.com:2083/",
        )
