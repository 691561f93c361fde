"""The OAuth2 / OpenID Connect authorization server, on django-oauth-toolkit (DOT).

DOT does the protocol; this module holds what the portal adds to it:

- `ValidadorOAuth2`: authorization-code grant only (plus refresh), each code single-use inside
  the transaction that issues its tokens, a replayed code revoking the tokens issued from it,
  an absolute refresh lifetime on top of DOT's idle one, inactive users refused, and the
  OpenID claims of our users.
- The services of the staff client-management page (`cliente_*`), which show a new secret
  once and store only its hash.
- `oauth_limpiar`, the scheduled cleanup.

Tokens are stored only as SHA-256 (DOT's RFC 9700 token storage), client secrets with the
password hasher; nothing here logs a code, token or secret.
"""

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import (
    clear_expired,
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
    revoke_access_token,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from .models import AplicacionOAuth, CanjeCodigo, Usuario

logger = logging.getLogger("incidencias.sso.oauth")

GRANT_TYPES = {"authorization_code", "refresh_token"}


def _sha256(valor: str) -> str:
    return hashlib.sha256(valor.encode("utf-8")).hexdigest()


def familia_revocar(*, familia) -> None:
    """Revoke every refresh token of a family and delete its access tokens."""
    get_refresh_token_model().revoke_family(familia)


class ValidadorOAuth2(OAuth2Validator):
    # Which scope releases each claim (userinfo and id_token); `*` releases them all.
    oidc_claim_scope = {
        "sub": "openid",
        "name": "profile",
        "preferred_username": "profile",
        "phone_number": "profile",
        "email": "email",
        "email_verified": "email",
    }

    # --- Grants ------------------------------------------------------------------------------

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        if grant_type not in GRANT_TYPES:
            return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        if response_type != "code":
            return False
        return super().validate_response_type(
            client_id, response_type, client, request, *args, **kwargs
        )

    @sensitive_variables("code")
    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return request.user.is_active
        canje = CanjeCodigo.objects.filter(codigo_hash=_sha256(code), aplicacion=client).first()
        if canje is not None:
            # RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it.
            familia_revocar(familia=canje.familia)
            logger.warning(
                "OAuth2 authorization code replayed: client %s, user %s; its tokens revoked",
                client.pk,
                canje.usuario_id,
            )
        return False

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        """Nothing left to do: the code was deleted in the transaction that issued the tokens."""

    # Of concurrent exchanges of one code, the winner deletes it; a loser that got past
    # validate_code must then fail as an invalid grant (400), not on the missing row (500).
    def get_code_challenge(self, code, request):
        try:
            return super().get_code_challenge(code, request)
        except get_grant_model().DoesNotExist:
            return None

    def get_code_challenge_method(self, code, request):
        try:
            return super().get_code_challenge_method(code, request)
        except get_grant_model().DoesNotExist:
            return None

    @sensitive_variables("token")
    def _save_bearer_token(self, token, request, *args, **kwargs):
        if request.grant_type != "authorization_code":
            super()._save_bearer_token(token, request, *args, **kwargs)
            if request.grant_type == "refresh_token":
                logger.info(
                    "OAuth2 refresh: client %s, user %s", request.client.pk, request.user.pk
                )
            return
        # The code dies in the same transaction that issues its tokens: of two concurrent
        # exchanges of one code exactly one deletes it, and the other issues nothing.
        borrados, _ = (
            get_grant_model().objects.filter(code=request.code, application=request.client).delete()
        )
        if not borrados:
            raise errors.InvalidGrantError(request=request)
        super()._save_bearer_token(token, request, *args, **kwargs)
        familia = (
            get_refresh_token_model()
            .objects.filter(token_checksum=_sha256(token["refresh_token"]))
            .values_list("token_family", flat=True)
            .get()
        )
        CanjeCodigo.objects.create(
            codigo_hash=_sha256(request.code),
            aplicacion=request.client,
            usuario=request.user,
            familia=familia,
        )
        logger.info("OAuth2 code exchanged: client %s, user %s", request.client.pk, request.user.pk)

    @sensitive_variables("refresh_token")
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        rt = request.refresh_token_instance
        inicio = (
            CanjeCodigo.objects.filter(familia=rt.token_family)
            .values_list("creado", flat=True)
            .first()
        )
        limite = timedelta(seconds=settings.OAUTH2_REFRESH_TOKEN_ABSOLUTE_SECONDS)
        if inicio is None or inicio + limite <= timezone.now():
            familia_revocar(familia=rt.token_family)
            logger.info("OAuth2 refresh refused: past the absolute lifetime (client %s)", client.pk)
            return False
        return rt.user.is_active

    def validate_bearer_token(self, token, scopes, request):
        if not super().validate_bearer_token(token, scopes, request):
            return False
        return request.user is None or request.user.is_active

    # --- OpenID Connect ----------------------------------------------------------------------

    def get_additional_claims(self, request):
        usuario: Usuario = request.user
        return {
            "name": usuario.nombre_visible,
            "preferred_username": usuario.username,
            "phone_number": usuario.phone or usuario.movil,
            "email": usuario.email,
            "email_verified": False,
        }

    def get_oidc_claims(self, token, token_handler, request):
        if "*" not in request.scopes:
            return super().get_oidc_claims(token, token_handler, request)
        claims = {"sub": str(request.user.pk), **self.get_additional_claims(request)}
        return {clave: valor for clave, valor in claims.items() if valor != ""}


# --- Clients (the staff page) ------------------------------------------------------------------


def _uris(texto: str) -> str:
    return " ".join(texto.split())


@sensitive_variables("secreto")
def cliente_crear(
    *,
    nombre: str,
    redirect_uris: str,
    confidencial: bool,
    primera_parte: bool,
    creado_por: Usuario | None,
) -> tuple[AplicacionOAuth, str]:
    """A new client for the authorization-code grant; returns it and its secret (shown once;
    public clients get none). Redirect URIs are validated by the model (exact, https)."""
    secreto = generate_client_secret() if confidencial else ""
    cliente = AplicacionOAuth(
        name=nombre,
        user=creado_por,
        redirect_uris=_uris(redirect_uris),
        client_type=(
            AplicacionOAuth.CLIENT_CONFIDENTIAL if confidencial else AplicacionOAuth.CLIENT_PUBLIC
        ),
        authorization_grant_type=AplicacionOAuth.GRANT_AUTHORIZATION_CODE,
        client_secret=secreto,
        hash_client_secret=confidencial,  # a public client stores no secret at all
        skip_authorization=primera_parte,
        algorithm=AplicacionOAuth.RS256_ALGORITHM,
    )
    cliente.full_clean()
    cliente.save()
    logger.info("OAuth2 client %s created", cliente.pk)
    return cliente, secreto


def cliente_editar(
    *, cliente: AplicacionOAuth, nombre: str, redirect_uris: str, primera_parte: bool
) -> AplicacionOAuth:
    cliente.name = nombre
    cliente.redirect_uris = _uris(redirect_uris)
    cliente.skip_authorization = primera_parte
    cliente.full_clean()
    cliente.save(update_fields=["name", "redirect_uris", "skip_authorization", "updated"])
    return cliente


@sensitive_variables("secreto")
@transaction.atomic
def cliente_rotar_secreto(*, cliente: AplicacionOAuth) -> str:
    """A new secret for a confidential client (the old one stops working at once); returned
    once, stored hashed."""
    if cliente.client_type != AplicacionOAuth.CLIENT_CONFIDENTIAL:
        raise ValueError("public clients have no secret")
    secreto = generate_client_secret()
    cliente.client_secret = secreto
    cliente.hash_client_secret = True
    cliente.save(update_fields=["client_secret", "hash_client_secret", "updated"])
    logger.info("OAuth2 client %s: secret rotated", cliente.pk)
    return secreto


@transaction.atomic
def _tokens_revocar(**filtro) -> bool:
    """Revoke the refresh tokens, and delete the access tokens and unused codes, that match
    `filtro` (`application=`, `user=`, or both). Whether any of them was live."""
    ahora = timezone.now()
    accesos = get_access_token_model().objects.filter(**filtro)
    vivos = accesos.filter(expires__gt=ahora).exists()
    revocados = (
        get_refresh_token_model()
        .objects.filter(revoked__isnull=True, **filtro)
        .update(revoked=ahora, access_token=None, updated=ahora)
    )
    accesos.delete()
    get_grant_model().objects.filter(**filtro).delete()
    return vivos or bool(revocados)


@transaction.atomic
def cliente_desactivar(*, cliente: AplicacionOAuth) -> None:
    """Disable a client: no new flows, and every token it holds is revoked."""
    cliente.activo = False
    cliente.save(update_fields=["activo", "updated"])
    _tokens_revocar(application=cliente)
    logger.info("OAuth2 client %s disabled; its tokens revoked", cliente.pk)


def cliente_activar(*, cliente: AplicacionOAuth) -> None:
    cliente.activo = True
    cliente.save(update_fields=["activo", "updated"])


# --- A user's grants (the login API's app sessions) ----------------------------------------------


def concesiones_de_usuario(*, usuario: Usuario) -> list[dict]:
    """The applications holding live tokens of the user, most recently used first: one item
    per application with when it was first granted and last issued a token (two queries)."""
    ahora = timezone.now()
    por_app: dict[int, dict] = {}
    for modelo, vivos in (
        (get_access_token_model(), {"expires__gt": ahora}),
        (get_refresh_token_model(), {"revoked__isnull": True}),
    ):
        filas = (
            modelo.objects.filter(user=usuario, application__isnull=False, **vivos)
            .values("application_id", "application__name")
            .annotate(desde=Min("created"), hasta=Max("created"))
            .order_by()
        )
        for fila in filas:
            item = por_app.setdefault(
                fila["application_id"],
                {"aplicacion": fila["application_id"], "nombre": fila["application__name"]},
            )
            item["desde"] = min(item.get("desde", fila["desde"]), fila["desde"])
            item["hasta"] = max(item.get("hasta", fila["hasta"]), fila["hasta"])
    return sorted(
        por_app.values(), key=lambda item: (item["hasta"], item["aplicacion"]), reverse=True
    )


def concesion_revocar(*, usuario: Usuario, aplicacion_id: int) -> bool:
    """Revoke every token the user granted one application; False if it held none live."""
    revocada = _tokens_revocar(user=usuario, application_id=aplicacion_id)
    if revocada:
        logger.info("OAuth2 grant of user %s to client %s revoked", usuario.pk, aplicacion_id)
    return revocada


def concesiones_revocar_usuario(*, usuario: Usuario) -> None:
    """Revoke every OAuth2 token of the user (disabling them)."""
    _tokens_revocar(user=usuario)


def token_oauth_revocar(*, token) -> None:
    """Logout with an OAuth2 access token: it dies with its refresh token (RFC 7009 §2.1)."""
    revoke_access_token(token)


# --- Cleanup -------------------------------------------------------------------------------------


def oauth_limpiar() -> int:
    """Delete expired codes and tokens (DOT's `cleartokens`), and the records of exchanged
    codes — with their refresh families — past the absolute refresh lifetime."""
    clear_expired()
    limite = timezone.now() - timedelta(seconds=settings.OAUTH2_REFRESH_TOKEN_ABSOLUTE_SECONDS)
    viejos = CanjeCodigo.objects.filter(creado__lt=limite)
    with transaction.atomic():
        get_refresh_token_model().objects.filter(token_family__in=viejos.values("familia")).delete()
        borrados, _ = viejos.delete()
    return borrados
