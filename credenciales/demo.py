"""The demo organisation of `manage.py demo`: the vault part. Idempotent."""

from sso.models import Departamento

from .models import Credencial, TipoCredencial
from .services import credencial_crear

TIPOS = ["Servidor", "Base de datos", "Correo", "Panel de hosting", "Red / VPN"]


def demo_credenciales() -> None:
    """The credential types, and one example credential of the support department (its secret
    is a demo value: the demo is for DEBUG only)."""
    tipos = {nombre: TipoCredencial.objects.get_or_create(nombre=nombre)[0] for nombre in TIPOS}
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
