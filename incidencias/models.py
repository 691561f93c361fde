"""The ticket domain: tickets, their thread, attachments, mailboxes, SLA policies, failed mail."""

from datetime import UTC, datetime

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from sso.fields import EncryptedTextField
from sso.models import Departamento

# `Ticket.orden_sla` when no target is pending: later than any real due date. Written into the
# column's SQL as text in the format SQLite stores datetimes in (PostgreSQL reads it as UTC, the
# time zone of Django's connections), so both databases compare it as the same instant.
SIN_VENCIMIENTO = datetime(9999, 12, 31, tzinfo=UTC)
SIN_VENCIMIENTO_SQL = "9999-12-31 00:00:00"


class Calendario(models.Model):
    """Business hours: per weekday (0 = Monday) a list of ["HH:MM", "HH:MM"] spans."""

    nombre = models.CharField(_("name"), max_length=80, unique=True)
    zona_horaria = models.CharField(_("time zone"), max_length=64, default="America/Costa_Rica")
    horario = models.JSONField(
        _("opening hours"),
        default=dict,
        help_text=_('Per weekday (0 = Monday): [["08:00", "17:00"]]. Missing days are closed.'),
    )

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")

    def __str__(self):
        return self.nombre

    def clean(self):
        from datetime import time

        error = ValidationError(
            {"horario": _('Use {"0": [["08:00", "17:00"]], …}: weekdays 0–6, spans start < end.')}
        )
        if not isinstance(self.horario, dict):
            raise error
        for dia, spans in self.horario.items():
            if dia not in {str(d) for d in range(7)} or not isinstance(spans, list):
                raise error
            for span in spans:
                try:
                    inicio, fin = (time.fromisoformat(v) for v in span)
                except (TypeError, ValueError):
                    raise error from None
                if inicio >= fin:
                    raise error


class Feriado(models.Model):
    calendario = models.ForeignKey(
        Calendario, on_delete=models.CASCADE, related_name="feriados", verbose_name=_("calendar")
    )
    fecha = models.DateField(_("date"))
    nombre = models.CharField(_("name"), max_length=120, blank=True)

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["fecha"]
        constraints = [
            models.UniqueConstraint(fields=["calendario", "fecha"], name="feriado_unico")
        ]

    def __str__(self):
        return f"{self.fecha} {self.nombre}"


class Prioridad(models.TextChoices):
    BAJA = "baja", _("low")
    NORMAL = "normal", _("normal")
    ALTA = "alta", _("high")
    URGENTE = "urgente", _("urgent")


class EstadoSLA(models.TextChoices):
    """Where a ticket stands against its SLA (`selectors.tickets_sla`)."""

    OK = "ok", _("on time")
    EN_RIESGO = "en_riesgo", _("at risk")
    INCUMPLIDO = "incumplido", _("breached")
    PAUSADO = "pausado", _("paused")


class PoliticaSLA(models.Model):
    """Targets, in business minutes of a calendar, for one department and priority."""

    departamento = models.ForeignKey(
        Departamento, on_delete=models.CASCADE, related_name="+", verbose_name=_("department")
    )
    prioridad = models.CharField(_("priority"), max_length=10, choices=Prioridad.choices)
    primera_respuesta_min = models.PositiveIntegerField(_("first response (business minutes)"))
    resolucion_min = models.PositiveIntegerField(_("resolution (business minutes)"))
    aviso_porcentaje = models.PositiveSmallIntegerField(
        _("warning at (percent of the target)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text=_("Empty: the SLA_AVISO_PORCENTAJE setting."),
    )
    calendario = models.ForeignKey(
        Calendario, on_delete=models.PROTECT, related_name="+", verbose_name=_("calendar")
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            models.UniqueConstraint(fields=["departamento", "prioridad"], name="politica_unica")
        ]

    def __str__(self):
        return f"{self.departamento} / {self.get_prioridad_display()}"


class Asignacion(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("round robin")
    MENOS_ABIERTOS = "menos_abiertos", _("fewest open tickets")
    NINGUNA = "ninguna", _("none (queue)")


class ColaDepartamento(models.Model):
    """How a department's new tickets find an agent, and whose turn it is."""

    departamento = models.OneToOneField(
        Departamento,
        on_delete=models.CASCADE,
        related_name="cola",
        primary_key=True,
        verbose_name=_("department"),
    )
    asignacion = models.CharField(
        _("assignment"), max_length=20, choices=Asignacion.choices, default=Asignacion.ROUND_ROBIN
    )
    ultimo_asignado = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("last assigned"),
    )

    class Meta:
        verbose_name = _("department queue")
        verbose_name_plural = _("department queues")

    def __str__(self):
        return str(self.departamento)


class CuentaCorreo(models.Model):
    """An IMAP mailbox polled for incoming mail."""

    class Seguridad(models.TextChoices):
        SSL = "ssl", _("TLS (IMAPS)")
        STARTTLS = "starttls", _("STARTTLS")
        NINGUNA = "ninguna", _("none (loopback only)")

    class TrasImportar(models.TextChoices):
        CONSERVAR = "conservar", _("keep")
        MARCAR_LEIDO = "marcar_leido", _("mark as read")
        MOVER = "mover", _("move to a folder")
        ELIMINAR = "eliminar", _("delete")

    class Estado(models.TextChoices):
        ACTIVO = "activo", _("active")
        INACTIVO = "inactivo", _("inactive")

    host = models.CharField(_("host"), max_length=255)
    port = models.PositiveIntegerField(_("port"), default=993)
    seguridad = models.CharField(
        _("security"), max_length=10, choices=Seguridad.choices, default=Seguridad.SSL
    )
    user = models.CharField(_("user"), max_length=255)
    password = EncryptedTextField(_("password"), blank=True)
    mail_boxes = models.JSONField(_("folders"), default=list, blank=True)
    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
    )
    estado = models.CharField(
        _("state"), max_length=10, choices=Estado.choices, default=Estado.ACTIVO
    )
    intervalo_segundos = models.PositiveIntegerField(_("poll interval (seconds)"), default=60)
    tras_importar = models.CharField(
        _("after import"),
        max_length=15,
        choices=TrasImportar.choices,
        default=TrasImportar.MARCAR_LEIDO,
    )
    carpeta_destino = models.CharField(_("move to folder"), max_length=255, blank=True)
    ultimo_sondeo = models.DateTimeField(_("last poll"), null=True, blank=True)
    ultimo_error = models.TextField(_("last error"), blank=True)
    ultimo_error_en = models.DateTimeField(_("last error at"), null=True, blank=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")
        ordering = ["user"]

    def __str__(self):
        return f"{self.user}@{self.host}"

    @property
    def carpetas(self) -> list[str]:
        return list(self.mail_boxes or ["INBOX"])

    @property
    def fuente(self) -> str:
        return f"cuenta:{self.pk}"


class EstadoCarpeta(models.Model):
    """Where polling of one IMAP folder stands: UIDVALIDITY and the last UID imported."""

    cuenta = models.ForeignKey(
        CuentaCorreo, on_delete=models.CASCADE, related_name="carpetas_estado"
    )
    carpeta = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True)
    ultimo_uid = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("folder state")
        verbose_name_plural = _("folder states")
        constraints = [
            models.UniqueConstraint(fields=["cuenta", "carpeta"], name="estado_carpeta_unico")
        ]

    def __str__(self):
        return f"{self.cuenta} {self.carpeta} {self.uidvalidity}:{self.ultimo_uid}"


class ReglaDepartamento(models.Model):
    """Routes mail that no mailbox decides (API, shared boxes) by `sistema` or recipient."""

    class Campo(models.TextChoices):
        SISTEMA = "sistema", _("reading system")
        DESTINATARIO = "destinatario", _("recipient address")

    campo = models.CharField(_("field"), max_length=15, choices=Campo.choices)
    valor = models.CharField(
        _("value"), max_length=255, help_text=_("Compared case-insensitively.")
    )
    departamento = models.ForeignKey(
        Departamento, on_delete=models.CASCADE, related_name="+", verbose_name=_("department")
    )
    orden = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["orden", "id"]

    def __str__(self):
        return f"{self.get_campo_display()} = {self.valor} → {self.departamento}"


class Ticket(models.Model):
    class Estado(models.TextChoices):
        NUEVO = "nuevo", _("new")
        ABIERTO = "abierto", _("open")
        EN_ESPERA = "en_espera", _("waiting on customer")
        RESUELTO = "resuelto", _("solved")
        CERRADO = "cerrado", _("closed")

    class Canal(models.TextChoices):
        CORREO = "correo", _("email")
        API = "api", _("API")
        PORTAL = "portal", _("portal")
        CHAT = "chat", _("chat")

    numero = models.BigIntegerField(_("number"), unique=True, editable=False)
    asunto = models.CharField(_("subject"), max_length=998, blank=True)
    estado = models.CharField(
        _("state"), max_length=10, choices=Estado.choices, default=Estado.NUEVO
    )
    prioridad = models.CharField(
        _("priority"), max_length=10, choices=Prioridad.choices, default=Prioridad.NORMAL
    )
    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("department"),
        db_index=False,  # ticket_dep_estado leads with it
    )
    asignado = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets_asignados",
        verbose_name=_("assignee"),
        db_index=False,  # ticket_asignado_estado leads with it
    )
    solicitante_nombre = models.CharField(_("requester name"), max_length=255, blank=True)
    solicitante_email = models.EmailField(_("requester email"), max_length=254, blank=True)
    participantes = models.JSONField(
        _("cc participants"), default=list, blank=True, help_text=_("Lower-case addresses.")
    )
    correos_rebotados = models.JSONField(_("bounced addresses"), default=list, blank=True)
    canal = models.CharField(
        _("channel"), max_length=10, choices=Canal.choices, default=Canal.CORREO
    )
    relacionado = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("follows up on"),
        db_index=False,  # a partial index in Meta
    )
    creado = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    actualizado = models.DateTimeField(_("updated"), auto_now=True)
    primera_respuesta_en = models.DateTimeField(_("first response at"), null=True, blank=True)
    resuelto_en = models.DateTimeField(_("solved at"), null=True, blank=True)
    cerrado_en = models.DateTimeField(_("closed at"), null=True, blank=True)
    vence_primera_respuesta = models.DateTimeField(_("first response due"), null=True, blank=True)
    vence_resolucion = models.DateTimeField(_("resolution due"), null=True, blank=True)
    # SLA clock (incidencias.sla): the warning moments of each target, when the clock stopped
    # (waiting on the customer), when the warning and breach of each target were raised, and
    # the next moment the sweep has anything to do (None: nothing pending).
    aviso_primera_respuesta = models.DateTimeField(
        _("first response warning"), null=True, blank=True
    )
    aviso_resolucion = models.DateTimeField(_("resolution warning"), null=True, blank=True)
    sla_pausado_en = models.DateTimeField(_("SLA clock paused at"), null=True, blank=True)
    avisado_primera_respuesta_en = models.DateTimeField(
        _("first response warning raised at"), null=True, blank=True
    )
    avisado_resolucion_en = models.DateTimeField(
        _("resolution warning raised at"), null=True, blank=True
    )
    incumplido_primera_respuesta_en = models.DateTimeField(
        _("first response breach raised at"), null=True, blank=True
    )
    incumplido_resolucion_en = models.DateTimeField(
        _("resolution breach raised at"), null=True, blank=True
    )
    sla_proximo = models.DateTimeField(_("next SLA check"), null=True, blank=True, editable=False)
    # The queue's SLA order, computed by the database on every write: the due date of the
    # target pending now (first response while unanswered, else resolution), SIN_VENCIMIENTO
    # when nothing is pending (solved, closed, no policy), so "no due date" sorts last and the
    # column is never NULL (a keyset cursor compares it as a plain value).
    orden_sla = models.GeneratedField(
        expression=Coalesce(
            Case(
                When(estado__in=["resuelto", "cerrado"], then=Value(None)),
                When(primera_respuesta_en__isnull=True, then=F("vence_primera_respuesta")),
                default=F("vence_resolucion"),
                output_field=models.DateTimeField(),
            ),
            Value(SIN_VENCIMIENTO_SQL),
            output_field=models.DateTimeField(),
        ),
        output_field=models.DateTimeField(),
        db_persist=True,
        verbose_name=_("SLA due (queue order)"),
    )
    # Full-text search (PostgreSQL): kept up to date by a trigger on every write.
    busqueda = SearchVectorField(null=True, editable=False)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-creado"]
        # Each write of a ticket (the SLA sweep's included) maintains every index: no index
        # repeats the leading column of another, and a column rarely set is indexed where set.
        indexes = [
            models.Index(fields=["estado"], name="ticket_estado"),
            models.Index(fields=["departamento", "estado"], name="ticket_dep_estado"),
            models.Index(fields=["asignado", "estado"], name="ticket_asignado_estado"),
            models.Index(
                fields=["relacionado"],
                condition=models.Q(relacionado__isnull=False),
                name="ticket_relacionado",
            ),
            models.Index(
                fields=["sla_proximo"],
                condition=models.Q(sla_proximo__isnull=False),
                name="ticket_sla_proximo",
            ),
            # The queue of a department in SLA order, keyset-paginated on (orden_sla, id); the
            # dashboard's overdue count is a range on it too.
            models.Index(fields=["departamento", "orden_sla", "id"], name="ticket_dep_orden_sla"),
            # The dashboard's "solved today": only solved tickets have a value.
            models.Index(
                fields=["resuelto_en"],
                condition=models.Q(resuelto_en__isnull=False),
                name="ticket_resuelto_en",
            ),
        ]

    def __str__(self):
        return f"#{self.numero} {self.asunto}"

    @property
    def vence_sla(self):
        """The due date of the target pending now, or None when nothing is pending."""
        vence = self.orden_sla
        return None if vence is None or vence.year == SIN_VENCIMIENTO.year else vence

    @property
    def etiqueta(self) -> str:
        return f"[Ticket #{self.numero}]"


def _ruta_crudo(instance, filename):
    return f"correos/{filename[:2]}/{filename}"


class DetalleTicket(models.Model):
    """One entry of a ticket's thread."""

    class Tipo(models.TextChoices):
        ENTRANTE = "entrante", _("inbound mail")
        RESPUESTA = "respuesta", _("outbound reply")
        NOTA = "nota", _("internal note")
        EVENTO = "evento", _("system event")

    class Automatico(models.TextChoices):
        NO = "", _("no")
        AUTORESPUESTA = "autorespuesta", _("auto-reply")
        REBOTE = "rebote", _("bounce")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="detalles", verbose_name=_("ticket")
    )
    tipo = models.CharField(_("kind"), max_length=10, choices=Tipo.choices)
    automatico = models.CharField(
        _("machine mail"), max_length=15, choices=Automatico.choices, default="", blank=True
    )
    autor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    de = models.CharField(_("from"), max_length=998, blank=True)
    para = models.TextField(_("to"), blank=True)
    cc = models.TextField(_("cc"), blank=True)
    bcc = models.TextField(_("bcc"), blank=True)
    responder_a = models.TextField(_("reply-to"), blank=True)
    asunto = models.CharField(_("subject"), max_length=998, blank=True)
    texto = models.TextField(_("text"), blank=True)
    html = models.TextField(_("HTML (sanitised)"), blank=True)
    fecha = models.DateTimeField(_("date"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=998, blank=True, db_index=True)
    in_reply_to = models.TextField(_("In-Reply-To"), blank=True)
    references = models.TextField(_("References"), blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    sistema = models.CharField(_("reading system"), max_length=120, blank=True)
    nota = models.TextField(_("processing note"), blank=True)
    rebotados = models.JSONField(_("failed recipients"), default=list, blank=True)
    fuente = models.CharField(_("source"), max_length=120, blank=True)
    clave_dedup = models.CharField(_("deduplication key"), max_length=255, blank=True)
    crudo = models.FileField(_("raw message"), upload_to=_ruta_crudo, blank=True, max_length=255)
    creado = models.DateTimeField(_("created"), auto_now_add=True)
    busqueda = SearchVectorField(null=True, editable=False)

    class Meta:
        verbose_name = _("ticket entry")
        verbose_name_plural = _("ticket entries")
        ordering = ["creado", "id"]
        constraints = [
            # The key first: a batch looks up many keys of one source at once.
            models.UniqueConstraint(
                fields=["clave_dedup", "fuente"],
                condition=~models.Q(clave_dedup=""),
                name="detalle_dedup_unico",
            )
        ]

    def __str__(self):
        return f"{self.ticket} · {self.get_tipo_display()} {self.pk}"


def _ruta_adjunto(instance, filename):
    return f"adjuntos/{instance.sha256[:2]}/{instance.sha256}"


class Adjunto(models.Model):
    """A file of a ticket entry. Identical content is stored once (by SHA-256)."""

    detalle = models.ForeignKey(
        DetalleTicket, on_delete=models.CASCADE, related_name="adjuntos", verbose_name=_("entry")
    )
    nombre = models.CharField(_("name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=255, blank=True)
    tamano = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    archivo = models.FileField(_("file"), upload_to=_ruta_adjunto, max_length=255)
    content_id = models.CharField(_("Content-ID"), max_length=255, blank=True)
    en_linea = models.BooleanField(_("inline"), default=False)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self):
        return self.nombre


class CorreoFallido(models.Model):
    """Mail that could not become a ticket entry, kept whole so it can be reprocessed."""

    class Motivo(models.TextChoices):
        ERROR = "error", _("processing error")
        BUCLE = "bucle", _("our own notification (loop)")

    motivo = models.CharField(_("reason"), max_length=15, choices=Motivo.choices)
    error = models.TextField(_("error"), blank=True)
    crudo = models.FileField(_("raw message"), upload_to=_ruta_crudo, max_length=255)
    tamano = models.PositiveBigIntegerField(_("size"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    fuente = models.CharField(_("source"), max_length=120, blank=True)
    cuenta = models.ForeignKey(
        CuentaCorreo,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("mailbox"),
    )
    carpeta = models.CharField(_("folder"), max_length=255, blank=True)
    uid = models.BigIntegerField(_("UID"), null=True, blank=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    reprocesado_en = models.DateTimeField(_("reprocessed at"), null=True, blank=True)
    detalle = models.ForeignKey(
        DetalleTicket,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resulting entry"),
    )

    class Meta:
        verbose_name = _("failed mail")
        verbose_name_plural = _("failed mail")
        ordering = ["-creado"]

    def __str__(self):
        return f"{self.get_motivo_display()} {self.creado:%Y-%m-%d %H:%M}"


class Notificacion(models.Model):
    """One message to deliver (the outbox): written in the transaction of the event that causes
    it, delivered by a worker with retries (`incidencias.notificaciones`)."""

    class Evento(models.TextChoices):
        TICKET_NUEVO = "ticket_nuevo", _("new ticket")
        RESPUESTA_CLIENTE = "respuesta_cliente", _("customer reply")
        ASIGNACION = "asignacion", _("assignment")
        SLA_AVISO = "sla_aviso", _("SLA warning")
        SLA_INCUMPLIDO = "sla_incumplido", _("SLA breach")
        RESPUESTA_ENVIADA = "respuesta_enviada", _("reply sent")
        ACUSE = "acuse", _("acknowledgement to the requester")
        # Not about a ticket: a message another app wrote for a person (`avisar_personas`).
        AVISO = "aviso", _("notice")

    class Canal(models.TextChoices):
        SYNOLOGY = "synology", _("Synology Chat")
        CORREO = "correo", _("email")

    class Estado(models.TextChoices):
        PENDIENTE = "pendiente", _("pending")
        ENVIANDO = "enviando", _("sending")
        ENVIADA = "enviada", _("sent")
        FALLIDA = "fallida", _("failed")
        DESCARTADA = "descartada", _("discarded")

    evento = models.CharField(_("event"), max_length=20, choices=Evento.choices)
    canal = models.CharField(_("channel"), max_length=10, choices=Canal.choices)
    # None for a notice (`Evento.AVISO`): what it is about is in `datos`.
    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notificaciones",
        verbose_name=_("ticket"),
    )
    detalle = models.ForeignKey(
        DetalleTicket,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notificaciones",
        verbose_name=_("entry"),
        db_index=False,  # a partial index in Meta
    )
    # The destination: a department's channel, a person, or an address.
    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
        db_index=False,  # a partial index in Meta
    )
    usuario = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notificaciones",
        verbose_name=_("user"),
        db_index=False,  # a partial index in Meta
    )
    correo = models.EmailField(_("email address"), max_length=254, blank=True)
    idioma = models.CharField(_("language"), max_length=10, blank=True)
    datos = models.JSONField(_("details"), default=dict, blank=True)
    estado = models.CharField(
        _("state"), max_length=10, choices=Estado.choices, default=Estado.PENDIENTE
    )
    intentos = models.PositiveIntegerField(_("attempts"), default=0)
    # When a pending row is due; while sending, when the sender's lease ends.
    proximo_intento = models.DateTimeField(_("next attempt"), null=True, blank=True)
    ultimo_error = models.TextField(_("last error"), blank=True)
    resultado = models.CharField(_("result"), max_length=255, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    creado = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    enviado_en = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Once-only events (the SLA sweep's): unique where set (a constraint in Meta).
    unico = models.CharField(  # noqa: DJ001 - NULL: no key, which the constraint skips
        _("once-only key"), max_length=255, null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-creado", "-id"]
        # Every row written maintains every index, and most columns below are empty on most
        # rows: those indexes only hold the rows that have a value (migration 0008).
        indexes = [
            models.Index(fields=["estado", "proximo_intento"], name="notificacion_cola"),
            models.Index(
                fields=["correo", "creado"],
                condition=models.Q(evento="acuse"),
                name="notificacion_acuse",
            ),
            models.Index(
                fields=["message_id"],
                condition=~models.Q(message_id=""),
                name="notificacion_message_id",
            ),
            models.Index(
                fields=["departamento"],
                condition=models.Q(departamento__isnull=False),
                name="notificacion_departamento",
            ),
            models.Index(
                fields=["detalle"],
                condition=models.Q(detalle__isnull=False),
                name="notificacion_detalle",
            ),
            models.Index(
                fields=["usuario"],
                condition=models.Q(usuario__isnull=False),
                name="notificacion_usuario",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["unico"],
                condition=models.Q(unico__isnull=False),
                name="notificacion_unico",
            ),
        ]

    def __str__(self):
        return f"{self.get_evento_display()} · {self.get_canal_display()} · {self.destino}"

    @property
    def destino(self) -> str:
        """A short name of the destination ("canal soporte", "agente (DM)", an address)."""
        if self.departamento_id:
            return f"canal {self.departamento.nombre.lower()}"
        if self.usuario_id:
            if self.canal == self.Canal.CORREO:
                return self.correo or self.usuario.email
            return f"{self.usuario.username} (DM)"
        return self.correo


class PreferenciaNotificacion(models.Model):
    """Turns one event on or off on one channel, for a department's tickets or for a person.

    Without a row the built-in defaults apply (README, *Notifications*). A department row says
    whether `destinatario` (its channel, the assignee, its heads, the requester) gets the event on
    `canal`; a person's row decides each channel whenever an event is routed to that person.
    """

    class Destinatario(models.TextChoices):
        DEPARTAMENTO = "departamento", _("the department's channel")
        ASIGNADO = "asignado", _("the assignee")
        JEFES = "jefes", _("the department's heads")
        SOLICITANTE = "solicitante", _("the requester")

    departamento = models.ForeignKey(
        Departamento,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
    )
    usuario = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="preferencias_notificacion",
        verbose_name=_("user"),
    )
    evento = models.CharField(_("event"), max_length=20, choices=Notificacion.Evento.choices)
    destinatario = models.CharField(
        _("recipient"),
        max_length=15,
        choices=Destinatario.choices,
        blank=True,
        help_text=_("For a department's rule only."),
    )
    canal = models.CharField(_("channel"), max_length=10, choices=Notificacion.Canal.choices)
    activa = models.BooleanField(_("send"), default=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(departamento__isnull=False, usuario__isnull=True)
                    & ~models.Q(destinatario="")
                )
                | models.Q(departamento__isnull=True, usuario__isnull=False, destinatario=""),
                name="preferencia_un_nivel",
            ),
            models.UniqueConstraint(
                fields=["departamento", "evento", "destinatario", "canal"],
                condition=models.Q(departamento__isnull=False),
                name="preferencia_departamento_unica",
            ),
            models.UniqueConstraint(
                fields=["usuario", "evento", "canal"],
                condition=models.Q(usuario__isnull=False),
                name="preferencia_usuario_unica",
            ),
        ]

    def __str__(self):
        quien = self.departamento or self.usuario
        return f"{quien}: {self.get_evento_display()} → {self.get_canal_display()}"

    def clean(self):
        if (self.departamento_id is None) == (self.usuario_id is None):
            raise ValidationError(_("Choose either a department or a user."))
        if self.departamento_id and not self.destinatario:
            raise ValidationError({"destinatario": _("A department's rule needs a recipient.")})
        if self.usuario_id:
            self.destinatario = ""


class FiltroGuardado(models.Model):
    """A queue filter an agent saved under a name: the queue's query string and its order."""

    class Orden(models.TextChoices):
        SLA = "sla", _("SLA due date")
        CREADO_DESC = "-creado", _("newest first")
        CREADO = "creado", _("oldest first")
        PRIORIDAD = "prioridad", _("priority")
        ACTUALIZADO_DESC = "-actualizado", _("recently updated")

    usuario = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="filtros_guardados",
        verbose_name=_("user"),
        db_index=False,  # filtro_guardado_unico leads with it
    )
    nombre = models.CharField(_("name"), max_length=80)
    consulta = models.CharField(_("filters (query string)"), max_length=2000, blank=True)
    orden = models.CharField(_("order"), max_length=15, choices=Orden.choices, default=Orden.SLA)
    creado = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        ordering = ["nombre"]
        constraints = [
            models.UniqueConstraint(fields=["usuario", "nombre"], name="filtro_guardado_unico")
        ]

    def __str__(self):
        return self.nombre
