"""The chat bot: Synology Chat's outgoing webhook posts what a person wrote to the bot; the
bot links that Synology account to the internal user with the same login and answers through
the chatbot API.

It understands `ticket 132` (state, assignee and SLA of a ticket the person may see),
`mis tickets` (their open tickets) and `ayuda`; anything else is answered with a greeting.
"""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from incidencias.models import Ticket
from incidencias.selectors import ESTADOS_ABIERTOS, tickets_para_usuario
from sso.models import Usuario

from .canal import (
    enlace_ticket,
    fecha_local,
    synology_enviar_a_id,
    synology_enviar_usuario,
    texto_seguro,
    usuario_guardar_id_synology,
)
from .synology import ErrorSynology

MAX_LISTA = 10
_TICKET = re.compile(r"^(?:ticket|tiquete)\s*#?\s*(\d{1,18})$")
_MIS_TICKETS = {"mis tickets", "mis tiquetes", "my tickets"}
_AYUDA = {"ayuda", "help", "?", "/ayuda", "/help"}
_SALUDOS = {"hola", "hello", "hi", "buenas", "buenos dias", "buenos días", "buenas tardes"}


@dataclass
class ResultadoBot:
    mensaje: str  # `response_update_usuario`
    usuario: Usuario | None
    synology_response: dict | None = None
    error: ErrorSynology | None = None


def _orden(texto: str, trigger_word: str) -> str:
    texto = (texto or "").strip()
    if trigger_word and texto.casefold().startswith(trigger_word.casefold()):
        texto = texto[len(trigger_word) :]
    return re.sub(r"\s+", " ", texto).strip().casefold()


def _ayuda() -> str:
    return "\n".join(
        [
            _("I understand:"),
            _("• ticket 132 — state, assignee and SLA due dates of ticket 132"),
            _("• mis tickets — your open tickets"),
            _("• ayuda — this help"),
        ]
    )


def _sla(vence, cumplido) -> str:
    if vence is None:
        return _("no target")
    if cumplido is not None:
        return _("due %(vence)s, met %(cumplido)s") % {
            "vence": fecha_local(vence),
            "cumplido": fecha_local(cumplido),
        }
    return _("due %(vence)s") % {"vence": fecha_local(vence)}


def _ticket(usuario: Usuario, numero: int) -> str:
    ticket = (
        tickets_para_usuario(usuario=usuario)
        .select_related("asignado", "departamento")
        .filter(numero=numero)
        .first()
    )
    if ticket is None:
        # Tickets the person may not see are "not found" too: the bot reveals nothing.
        return _("Ticket #%(numero)s was not found.") % {"numero": numero}
    resuelto = ticket.resuelto_en or ticket.cerrado_en
    abrir = _("Open the ticket")
    return "\n".join(
        [
            f"#{ticket.numero} {texto_seguro(ticket.asunto)}",
            _("State: %(estado)s") % {"estado": ticket.get_estado_display()},
            _("Assignee: %(asignado)s")
            % {"asignado": texto_seguro(ticket.asignado, 80) if ticket.asignado_id else "—"},
            _("Department: %(departamento)s")
            % {
                "departamento": texto_seguro(ticket.departamento, 80)
                if ticket.departamento_id
                else "—"
            },
            _("First response: %(sla)s")
            % {"sla": _sla(ticket.vence_primera_respuesta, ticket.primera_respuesta_en)},
            _("Resolution: %(sla)s") % {"sla": _sla(ticket.vence_resolucion, resuelto)},
            f"<{enlace_ticket(ticket)}|{abrir}>",
        ]
    )


def _mis_tickets(usuario: Usuario) -> str:
    abiertos = Ticket.objects.filter(asignado=usuario, estado__in=ESTADOS_ABIERTOS).order_by(
        "vence_resolucion", "creado", "id"
    )
    tickets = list(abiertos[: MAX_LISTA + 1])
    if not tickets:
        return _("You have no open tickets.")
    lineas = [_("Your open tickets:")]
    for ticket in tickets[:MAX_LISTA]:
        linea = f"• <{enlace_ticket(ticket)}|#{ticket.numero}> {texto_seguro(ticket.asunto, 80)}"
        linea += f" ({ticket.get_estado_display()}"
        if ticket.vence_resolucion:
            linea += ", " + _("due %(vence)s") % {"vence": fecha_local(ticket.vence_resolucion)}
        lineas.append(linea + ")")
    if len(tickets) > MAX_LISTA:
        lineas.append(_("… and %(mas)s more.") % {"mas": abiertos.count() - MAX_LISTA})
    return "\n".join(lineas)


def bot_responder(*, usuario: Usuario, orden: str) -> str:
    """The bot's answer to a linked user's message (already normalised by `_orden`)."""
    if orden in _AYUDA:
        return _ayuda()
    coincide = _TICKET.match(orden)
    if coincide:
        return _ticket(usuario, int(coincide.group(1)))
    if orden in _MIS_TICKETS:
        return _mis_tickets(usuario)
    saludo = _("Hello, %(nombre)s. Your Synology Chat account is linked to the user %(login)s.") % {
        "nombre": texto_seguro(usuario, 80),
        "login": usuario.username,
    }
    if orden.strip(".!¡ ") in _SALUDOS or not orden:
        return saludo + "\n" + _("Write «ayuda» to see what I can do.")
    return _("I do not understand «%(orden)s». Write «ayuda» to see what I can do.") % {
        "orden": texto_seguro(orden, 80)
    }


def _sin_cuenta(username: str, user_id: int) -> str:
    return _(
        "I do not know a portal user with the login «%(username)s». To link your account, ask "
        "an administrator to give your portal user the login «%(username)s» (your Synology Chat "
        "user name), or your Synology Chat id %(user_id)s, then write to me again."
    ) % {"username": texto_seguro(username, 80), "user_id": user_id}


def _usuario_por_login(username: str) -> Usuario | None:
    """The active internal user (staff, never a customer account) whose login is `username`:
    exactly, else the only one that differs in case. Two candidates differing only in case
    link nobody: a chat account must never be tied to someone else's portal user."""
    candidatos = list(
        Usuario.objects.filter(username__iexact=username, is_active=True)
        .exclude(tipo_usuario=Usuario.Tipo.CLIENTE)
        .order_by("id")[:5]
    )
    exacto = [u for u in candidatos if u.username == username]
    if exacto:
        return exacto[0]
    return candidatos[0] if len(candidatos) == 1 else None


def bot_atender(*, user_id: int, username: str, texto: str, trigger_word: str = "") -> ResultadoBot:
    """Link the Synology user `user_id`/`username` to the internal user with that login, store
    the id, and answer what they wrote through the chatbot API."""
    usuario = _usuario_por_login(username)
    if usuario is None:
        resultado = ResultadoBot(mensaje=f"Usuario {username} no encontrado.", usuario=None)
        try:
            respuesta, _usado = synology_enviar_a_id(
                user_id=user_id, username=username, texto=_sin_cuenta(username, user_id)
            )
            resultado.synology_response = respuesta.cuerpo
        except ErrorSynology as exc:
            resultado.error = exc
        return resultado

    usuario_guardar_id_synology(usuario=usuario, id_synology=user_id)
    resultado = ResultadoBot(mensaje=f"Usuario {usuario.username} actualizado.", usuario=usuario)
    answer = bot_responder(usuario=usuario, orden=_orden(texto, trigger_word))
    try:
        resultado.synology_response = synology_enviar_usuario(usuario=usuario, texto=answer).cuerpo
    except ErrorSynology as exc:
        resultado.error = exc
    return resultado
