"""A user's sessions: sign-ins applications registered (`SesionApp`), the user tokens that
are still alive, and the OAuth2 applications holding live tokens of theirs (`sso.oauth`). A
user sees and ends their own; disabling a user ends all of them.

Items are named `"<id>"` (an application session, the id `register` returned), `"token-<id>"`
(a user token) or `"oauth-<id>"` (an OAuth2 client's grant: all its tokens of the user), so one
`DELETE /api/app-sessions/{id}` ends any of them.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from .models import SesionApp, TokenUsuario, Usuario
from .oauth import concesion_revocar, concesiones_de_usuario, concesiones_revocar_usuario
from .tokens import tokens_revocar_usuario


class SesionNoEncontrada(Exception):
    """No live session of this user has that id."""


def sesion_app_registrar(
    *,
    usuario: Usuario,
    app_name: str,
    ip_address: str | None,
    user_agent: str,
    token: TokenUsuario | None = None,
) -> SesionApp:
    return SesionApp.objects.create(
        usuario=usuario,
        token=token,
        app_name=app_name,
        ip_address=ip_address or None,
        user_agent=user_agent[:512],
    )


def sesiones_de_usuario(*, usuario: Usuario) -> list[dict]:
    """The user's live sessions, newest first: application sessions, user tokens, then OAuth2
    grants."""
    ahora = timezone.now()
    apps = [
        {
            "id": sesion.pk,
            "type": "app",
            "app_name": sesion.app_name,
            "ip_address": sesion.ip_address,
            "user_agent": sesion.user_agent,
            "is_active": True,
            "created_at": sesion.creado,
            "last_used_at": None,
        }
        for sesion in SesionApp.objects.filter(usuario=usuario, terminado__isnull=True).order_by(
            "-creado", "-pk"
        )
    ]
    tokens = [
        {
            "id": f"token-{token.pk}",
            "type": "token",
            "app_name": token.sistema.nombre if token.sistema else "API",
            "ip_address": token.ip,
            "user_agent": "",
            "is_active": True,
            "created_at": token.creado,
            "last_used_at": token.ultimo_uso,
        }
        for token in TokenUsuario.objects.filter(
            usuario=usuario, revocado__isnull=True, expira__gt=ahora
        )
        .select_related("sistema")
        .order_by("-creado", "-pk")
    ]
    concesiones = [
        {
            "id": f"oauth-{concesion['aplicacion']}",
            "type": "oauth",
            "app_name": concesion["nombre"],
            "ip_address": None,
            "user_agent": "",
            "is_active": True,
            "created_at": concesion["desde"],
            "last_used_at": concesion["hasta"],
        }
        for concesion in concesiones_de_usuario(usuario=usuario)
    ]
    return apps + tokens + concesiones


def _numero(texto: str) -> int | None:
    return int(texto) if texto.isascii() and texto.isdigit() and len(texto) < 19 else None


def sesion_terminar(*, usuario: Usuario, id_sesion: str) -> None:
    """End one of the user's own sessions; SesionNoEncontrada for anyone else's (or none)."""
    ahora = timezone.now()
    id_sesion = str(id_sesion)
    if id_sesion.startswith("token-") and id_sesion[6:].isascii() and id_sesion[6:].isdigit():
        with transaction.atomic():
            hechos = TokenUsuario.objects.filter(
                pk=int(id_sesion[6:]), usuario=usuario, revocado__isnull=True
            ).update(revocado=ahora)
            if hechos:
                SesionApp.objects.filter(
                    token_id=int(id_sesion[6:]), usuario=usuario, terminado__isnull=True
                ).update(terminado=ahora)
    elif id_sesion.startswith("oauth-") and _numero(id_sesion[6:]) is not None:
        hechos = concesion_revocar(usuario=usuario, aplicacion_id=_numero(id_sesion[6:]))
    elif id_sesion.isascii() and id_sesion.isdigit() and len(id_sesion) < 19:
        hechos = SesionApp.objects.filter(
            pk=int(id_sesion), usuario=usuario, terminado__isnull=True
        ).update(terminado=ahora)
    else:
        hechos = 0
    if not hechos:
        raise SesionNoEncontrada()


def sesiones_terminar_token(*, token: TokenUsuario) -> None:
    """Logout: the token dies, with the application sessions registered through it."""
    ahora = timezone.now()
    with transaction.atomic():
        TokenUsuario.objects.filter(pk=token.pk, revocado__isnull=True).update(revocado=ahora)
        SesionApp.objects.filter(token=token, terminado__isnull=True).update(terminado=ahora)


def usuario_sesiones_terminar(*, usuario: Usuario) -> None:
    """End every session of the user: application sessions, user tokens and OAuth2 tokens
    (JWTs die by `jwt_valido_desde` and the user being inactive)."""
    with transaction.atomic():
        SesionApp.objects.filter(usuario=usuario, terminado__isnull=True).update(
            terminado=timezone.now()
        )
        tokens_revocar_usuario(usuario=usuario)
        concesiones_revocar_usuario(usuario=usuario)


def _al_guardar_usuario(sender, instance, created, update_fields=None, **kwargs):
    """A disabled user keeps no session, whoever disabled them (admin, shell, a service)."""
    if created or instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    usuario_sesiones_terminar(usuario=instance)


def conectar_senales() -> None:
    post_save.connect(_al_guardar_usuario, sender=Usuario, dispatch_uid="sso.sesiones.usuario")
