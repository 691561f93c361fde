"""Notifications through Synology Chat: a department's channel, or a person through the bot.

`synology_mensaje` renders a ticket event as chat text; `synology_enviar_canal` and
`synology_enviar_usuario` send text; `NotificadorSynology` is the outbox's channel "synology",
adapting one `Notificacion` row to them.
"""

import re
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from incidencias import configuracion
from incidencias.notificaciones import enlace_ticket
from sso.models import Usuario

from . import synology
from .models import CanalSynology
from .synology import ErrorPermanente, Respuesta

MAX_TEXTO = 2000  # Synology refuses long messages (error 410)


def texto_seguro(valor, largo: int = 200) -> str:
    """User-supplied text for a chat line: one line, no `<…|…>` link markup, cut short."""
    valor = re.sub(r"\s+", " ", str(valor or "")).strip()
    valor = valor.replace("<", "‹").replace(">", "›")
    return valor if len(valor) <= largo else valor[: largo - 1] + "…"


def fecha_local(valor) -> str:
    """A datetime (or ISO string) in the portal's time zone, as `dd/mm/yyyy hh:mm`."""
    if isinstance(valor, str):
        try:
            valor = datetime.fromisoformat(valor)
        except ValueError:
            return texto_seguro(valor, 40)
    if not isinstance(valor, datetime):
        return ""
    if timezone.is_naive(valor):
        valor = timezone.make_aware(valor)
    return timezone.localtime(valor).strftime("%d/%m/%Y %H:%M")


def _objetivo(datos: dict) -> str:
    return {
        "primera_respuesta": _("first response"),
        "resolucion": _("resolution"),
    }.get(datos.get("objetivo"), texto_seguro(datos.get("objetivo", ""), 40))


def _titulo(evento: str, ticket, datos: dict) -> str:
    numero = ticket.numero
    if evento == "ticket_nuevo":
        return _("New ticket #%(numero)s") % {"numero": numero}
    if evento == "respuesta_cliente":
        return _("The customer replied on ticket #%(numero)s") % {"numero": numero}
    if evento == "asignacion":
        asignado = texto_seguro(ticket.asignado, 80) if ticket.asignado_id else _("nobody")
        return _("Ticket #%(numero)s assigned to %(asignado)s") % {
            "numero": numero,
            "asignado": asignado,
        }
    if evento == "sla_aviso":
        return _("SLA warning on ticket #%(numero)s: %(objetivo)s due %(vence)s") % {
            "numero": numero,
            "objetivo": _objetivo(datos),
            "vence": fecha_local(datos.get("vence")),
        }
    if evento == "sla_incumplido":
        return _("SLA breached on ticket #%(numero)s: %(objetivo)s was due %(vence)s") % {
            "numero": numero,
            "objetivo": _objetivo(datos),
            "vence": fecha_local(datos.get("vence")),
        }
    if evento == "respuesta_enviada":
        return _("Reply sent on ticket #%(numero)s") % {"numero": numero}
    return _("Ticket #%(numero)s updated") % {"numero": numero}


def synology_mensaje(*, evento: str, ticket, enlace: str, datos: dict | None = None) -> str:
    """The chat text of a ticket event: what happened, subject, department and a link."""
    datos = datos if isinstance(datos, dict) else {}
    departamento = texto_seguro(ticket.departamento, 80) if ticket.departamento_id else "—"
    abrir = _("Open the ticket")
    lineas = [
        _titulo(evento, ticket, datos),
        _("Subject: %(asunto)s") % {"asunto": texto_seguro(ticket.asunto) or "—"},
        _("Department: %(departamento)s") % {"departamento": departamento},
        f"<{enlace}|{abrir}>",
    ]
    return "\n".join(lineas)[:MAX_TEXTO]


def usuario_guardar_id_synology(*, usuario: Usuario, id_synology: int) -> None:
    """Store the Synology Chat id of `usuario`. A Synology account belongs to one person: any
    other user holding the same id loses it."""
    if usuario.id_synology == id_synology:
        return
    with transaction.atomic():
        Usuario.objects.filter(id_synology=id_synology).exclude(pk=usuario.pk).update(
            id_synology=None
        )
        Usuario.objects.filter(pk=usuario.pk).update(id_synology=id_synology)
    usuario.id_synology = id_synology


def _id_en_user_list(username: str) -> int | None:
    buscado = username.casefold()
    for persona in synology.usuarios_del_bot():
        if str(persona.get("username", "")).casefold() == buscado:
            return persona["user_id"]
    return None


def synology_enviar_a_id(
    *, user_id: int | None, username: str, texto: str
) -> tuple[Respuesta, int]:
    """Send `texto` through the bot to `user_id`; when the chatbot API does not know that id
    (ids in outgoing webhooks can differ from the chatbot's), find the person by `username` in
    the bot's `user_list` and send there. Returns Synology's answer and the id that worked."""
    if user_id is not None:
        respuesta = synology.enviar_a_usuarios(user_ids=[user_id], texto=texto)
        posteados = synology.entregados(respuesta)
        if posteados is None or user_id in posteados:
            return respuesta, user_id
    otro = _id_en_user_list(username) if username else None
    if otro is None or otro == user_id:
        raise ErrorPermanente(
            f"Synology chatbot: no user {texto_seguro(username, 80)!r} (id {user_id})",
            metodo="chatbot",
        )
    respuesta = synology.enviar_a_usuarios(user_ids=[otro], texto=texto)
    posteados = synology.entregados(respuesta)
    if posteados is not None and otro not in posteados:
        raise ErrorPermanente(
            f"Synology chatbot: user {texto_seguro(username, 80)!r} not reachable (id {otro})",
            metodo="chatbot",
        )
    return respuesta, otro


def synology_enviar_usuario(*, usuario: Usuario, texto: str) -> Respuesta:
    """A direct message to `usuario` through the bot; the id that worked is stored."""
    respuesta, user_id = synology_enviar_a_id(
        user_id=usuario.id_synology, username=usuario.username, texto=texto[:MAX_TEXTO]
    )
    usuario_guardar_id_synology(usuario=usuario, id_synology=user_id)
    return respuesta


def synology_enviar_canal(*, canal: CanalSynology, texto: str) -> Respuesta:
    """Post `texto` to a department's channel through its incoming webhook."""
    return synology.enviar_a_canal(token=canal.token, texto=texto[:MAX_TEXTO])


def _departamentos() -> frozenset[int]:
    return frozenset(
        CanalSynology.objects.filter(activo=True).values_list("departamento_id", flat=True)
    )


configuracion.conectar(CanalSynology)


def canal_de_departamento(departamento_id: int) -> CanalSynology:
    canal = CanalSynology.objects.filter(departamento_id=departamento_id, activo=True).first()
    if canal is None:
        raise ErrorPermanente(f"department {departamento_id} has no active Synology channel")
    return canal


class NotificadorSynology:
    """The outbox's channel "synology": a department's row goes to its channel, a person's to
    a direct message from the bot."""

    nombre = "synology"

    def acepta(self, *, departamento_id: int | None = None, usuario=None) -> bool:
        """Whether a row could be delivered: Synology configured, and an active channel for
        the department (cached like the rest of the configuration, forgotten when a channel
        is saved or deleted) or a Synology id for the person."""
        if not settings.SYNOLOGY_URL:
            return False
        if departamento_id is not None:
            return departamento_id in configuracion.leer(("synology", "canales"), _departamentos)
        return usuario is not None and usuario.id_synology is not None

    def enviar(self, notificacion) -> str:
        ticket = notificacion.ticket
        with translation.override(settings.LANGUAGE_CODE):
            texto = synology_mensaje(
                evento=notificacion.evento,
                ticket=ticket,
                enlace=enlace_ticket(ticket),
                datos=notificacion.datos,
            )
        if notificacion.departamento_id:
            canal = canal_de_departamento(notificacion.departamento_id)
            synology_enviar_canal(canal=canal, texto=texto)
            return f"Enviada a canal {canal.nombre}"
        if notificacion.usuario_id:
            usuario = notificacion.usuario
            synology_enviar_usuario(usuario=usuario, texto=texto)
            return f"Enviada a {usuario.username} por Synology"
        raise ErrorPermanente("a Synology notification needs a department or a user")
