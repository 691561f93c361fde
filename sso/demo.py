"""The demo organisation of `manage.py demo`: identity part. Idempotent."""

from .models import AplicacionOAuth, Departamento, Rol, Sistema, Unidad, Usuario

DEPARTAMENTOS = {
    "Soporte": ["Hosting", "Correo"],
    "Redes": ["Telefonía", "Enlaces"],
    "Desarrollo": ["Aplicaciones"],
}
SISTEMAS = [
    ("factura_profesional", "Factura Profesional", "facturaprofesional.example.com"),
    ("planilla_profesional", "Planilla Profesional", "planillaprofesional.example.com"),
]
# login, name, department, head?, superuser?, password
USUARIOS = [
    ("admin", "Administración", None, False, True, "admin-demo-2026"),
    ("jefa.soporte", "Ana Jefa Soporte", "Soporte", True, False, "agente-demo-2026"),
    ("agente1", "Bruno Agente", "Soporte", False, False, "agente-demo-2026"),
    ("agente2", "Carla Agente", "Redes", False, False, "agente-demo-2026"),
]


def demo_identidad() -> list[tuple[str, str, bool]]:
    """Create what is missing; returns (login, password, created) for each demo user."""
    rol, _ = Rol.objects.get_or_create(nombre="soporte")
    departamentos = {}
    for nombre, unidades in DEPARTAMENTOS.items():
        dep, _ = Departamento.objects.get_or_create(
            nombre=nombre, defaults={"correo": f"{nombre.lower()}@example.com"}
        )
        departamentos[nombre] = dep
        for unidad in unidades:
            Unidad.objects.get_or_create(
                departamento=dep,
                clave=unidad.lower().replace("í", "i"),
                defaults={"nombre": unidad},
            )
    sistemas = [
        Sistema.objects.get_or_create(
            alias=alias,
            defaults={
                "nombre": nombre,
                "dominio": dominio,
                "url_reset": f"https://{dominio}/restablecer",
            },
        )[0]
        for alias, nombre, dominio in SISTEMAS
    ]
    logins = []
    for login, nombre, dep, jefe, superuser, password in USUARIOS:
        user = Usuario.objects.filter(username=login).first()
        created = user is None
        if created:
            user = Usuario(
                username=login,
                nombre=nombre,
                email=f"{login}@example.com",
                departamento=departamentos.get(dep),
                rol=rol,
                jefe=jefe,
                acceso_ticket=dep is not None,
                is_staff=True,
                is_superuser=superuser,
            )
            user.set_password(password)
            user.save()
            user.accesos_sistemas.set(sistemas)
        logins.append((login, password, created))
    return logins


# A first-party browser app (public client, PKCE) to try the OAuth2 flow against `make run`.
CLIENTE_DEMO = ("Panel demo", "http://127.0.0.1:8765/callback")


def demo_cliente_oauth() -> AplicacionOAuth:
    """The demo OAuth client, created once (it needs http redirects: DEBUG)."""
    from .oauth import cliente_crear

    nombre, redirect = CLIENTE_DEMO
    cliente = AplicacionOAuth.objects.filter(name=nombre).first()
    if cliente is None:
        cliente, _ = cliente_crear(
            nombre=nombre,
            redirect_uris=redirect,
            confidencial=False,
            primera_parte=True,
            creado_por=Usuario.objects.filter(username="admin").first(),
        )
    return cliente
