"""SMS delivery for two-factor codes, through a pluggable gateway (SMS_BACKEND).

- `console` writes the message to standard output: for development, where the code is the
  point (never use it in production: the code ends in the process output).
- `http` posts to SMS_GATEWAY_URL, as JSON:

      POST {SMS_GATEWAY_URL}
      Authorization: Basic base64(SMS_GATEWAY_USER:SMS_GATEWAY_PASSWORD)
      Content-Type: application/json
      {"to": "+50688887777", "from": "Incidencias", "text": "Su código ... 123456 ..."}

  Any 2xx is accepted (a JSON body with `message_id` is logged when present). A 4xx is a
  permanent refusal (bad number, bad credentials) and is not retried; a connection error,
  a timeout or a 5xx is retried SMS_RETRIES times.
"""

import logging
import sys

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

logger = logging.getLogger("incidencias.sso.sms")


class EnvioSMSFallido(Exception):
    """The gateway did not take the message."""


class ConsolaSMS:
    def enviar(self, *, numero: str, texto: str) -> None:
        sys.stdout.write(f"SMS to {numero}: {texto}\n")
        sys.stdout.flush()


class HttpSMS:
    """One HTTP helper for the gateway: timeouts, bounded retries, permanent vs passing errors."""

    @sensitive_variables("texto")
    def enviar(self, *, numero: str, texto: str) -> None:
        ultimo = None
        for _ in range(1 + max(0, settings.SMS_RETRIES)):
            try:
                response = requests.post(
                    settings.SMS_GATEWAY_URL,
                    json={"to": numero, "from": settings.SMS_SENDER, "text": texto},
                    auth=(settings.SMS_GATEWAY_USER, settings.SMS_GATEWAY_PASSWORD),
                    headers={"Accept": "application/json"},
                    timeout=settings.SMS_TIMEOUT,
                )
            except requests.RequestException as exc:
                ultimo = exc.__class__.__name__
                continue
            if 200 <= response.status_code < 300:
                logger.info("SMS accepted by the gateway: %s", _message_id(response))
                return
            ultimo = f"HTTP {response.status_code}"
            if response.status_code < 500:
                break  # permanent: retrying sends the same refusal
        raise EnvioSMSFallido(ultimo)


def _message_id(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "-"
    return str(body.get("message_id", "-")) if isinstance(body, dict) else "-"


def sms_enviar(*, numero: str, texto: str) -> None:
    """Send one SMS through the configured gateway; EnvioSMSFallido if it is not taken."""
    backend = HttpSMS() if settings.SMS_BACKEND == "http" else ConsolaSMS()
    backend.enviar(numero=numero, texto=texto)
