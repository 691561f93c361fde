"""PKCE policy of the authorization server (django-oauth-toolkit's PKCE_REQUIRED).

Public clients (no secret: browser and mobile apps) must send a S256 code challenge;
confidential clients may, and when they do it is checked at the token endpoint. A client that
does not exist is treated as public, so the request fails on the strictest rule.
"""


def pkce_requerido(client_id: str) -> bool:
    from oauth2_provider.models import get_application_model  # settings import this module

    aplicacion = get_application_model()
    tipo = aplicacion.objects.filter(client_id=client_id).values_list("client_type", flat=True)
    return tipo.first() != aplicacion.CLIENT_CONFIDENTIAL
