from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from .imap import sondear_buzones
from .ingest import correo_fallido_reprocesar
from .models import (
    Adjunto,
    Calendario,
    ColaDepartamento,
    CorreoFallido,
    CuentaCorreo,
    DetalleTicket,
    EstadoCarpeta,
    EstadoSLA,
    Feriado,
    Notificacion,
    PoliticaSLA,
    PreferenciaNotificacion,
    ReglaDepartamento,
    RespuestaPredefinida,
    Ticket,
)
from .notificaciones import notificacion_reintentar
from .selectors import ticket_buscar, tickets_sla
from .services import (
    TicketFusionado,
    ticket_asignar,
    ticket_cambiar_estado,
    ticket_cambiar_prioridad,
    ticket_transferir,
)


class FeriadoInline(admin.TabularInline):
    model = Feriado
    extra = 0


@admin.register(Calendario)
class CalendarioAdmin(admin.ModelAdmin):
    list_display = ["nombre", "zona_horaria"]
    inlines = [FeriadoInline]


@admin.register(PoliticaSLA)
class PoliticaSLAAdmin(admin.ModelAdmin):
    list_display = [
        "departamento", "prioridad", "primera_respuesta_min", "resolucion_min", "calendario",
    ]  # fmt: skip
    list_filter = ["departamento", "prioridad"]
    list_select_related = ["departamento", "calendario"]


@admin.register(ColaDepartamento)
class ColaDepartamentoAdmin(admin.ModelAdmin):
    list_display = ["departamento", "asignacion", "ultimo_asignado"]
    list_select_related = ["departamento", "ultimo_asignado"]
    raw_id_fields = ["ultimo_asignado"]


@admin.register(ReglaDepartamento)
class ReglaDepartamentoAdmin(admin.ModelAdmin):
    list_display = ["orden", "campo", "valor", "departamento"]
    list_display_links = ["valor"]
    list_filter = ["campo", "departamento"]


class CuentaCorreoForm(forms.ModelForm):
    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the current password."),
    )

    class Meta:
        model = CuentaCorreo
        fields = ["host", "port", "seguridad", "user", "password", "mail_boxes", "departamento",
                  "estado", "intervalo_segundos", "tras_importar", "carpeta_destino"]  # fmt: skip

    def clean_password(self):
        password = self.cleaned_data.get("password")
        if not password and self.instance.pk:
            return self.instance.password  # unchanged
        return password


class EstadoCarpetaInline(admin.TabularInline):
    model = EstadoCarpeta
    extra = 0
    readonly_fields = ["carpeta", "uidvalidity", "ultimo_uid"]
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CuentaCorreo)
class CuentaCorreoAdmin(admin.ModelAdmin):
    form = CuentaCorreoForm
    list_display = ["user", "host", "port", "seguridad", "departamento", "estado", "ultimo_sondeo",
                    "ultimo_error_en"]  # fmt: skip
    list_filter = ["estado", "departamento", "seguridad"]
    search_fields = ["user", "host"]
    readonly_fields = ["ultimo_sondeo", "ultimo_error", "ultimo_error_en"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("departamento")
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("password")  # the list never decrypts passwords
        return queryset

    inlines = [EstadoCarpetaInline]
    actions = ["sondear_ahora", "releer_desde_el_inicio"]

    @admin.action(description=_("Poll now"), permissions=["change"])
    def sondear_ahora(self, request, queryset):
        for cuenta in queryset.filter(estado=CuentaCorreo.Estado.ACTIVO):
            for resumen in sondear_buzones(cuenta_id=cuenta.pk, solo_vencidas=False):
                nivel = messages.ERROR if resumen.error else messages.SUCCESS
                self.message_user(request, str(resumen), nivel)

    @admin.action(
        description=_("Read the folders again from the start (duplicates are skipped)"),
        permissions=["change"],
    )
    def releer_desde_el_inicio(self, request, queryset):
        borradas, _detalle = EstadoCarpeta.objects.filter(cuenta__in=queryset).delete()
        self.message_user(request, _("%(n)d folder states reset.") % {"n": borradas})


class AdjuntoInline(admin.TabularInline):
    model = Adjunto
    extra = 0
    fields = ["nombre", "content_type", "tamano", "en_linea", "archivo"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DetalleTicket)
class DetalleTicketAdmin(admin.ModelAdmin):
    list_display = ["id", "ticket", "tipo", "automatico", "de", "asunto", "fecha", "creado"]
    list_filter = ["tipo", "automatico"]
    search_fields = ["=message_id", "asunto", "de"]
    list_select_related = ["ticket"]
    raw_id_fields = ["ticket", "autor"]
    # The HTML was sanitised on the way in: editing it here would bypass that.
    readonly_fields = ["html", "fuente", "clave_dedup", "crudo", "headers", "message_id",
                       "in_reply_to", "references", "rebotados", "nota", "creado"]  # fmt: skip
    inlines = [AdjuntoInline]
    show_full_result_count = False


class DetalleInline(admin.TabularInline):
    model = DetalleTicket
    extra = 0
    fields = ["tipo", "automatico", "de", "asunto", "fecha"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class EstadoSLAFilter(admin.SimpleListFilter):
    title = _("SLA status")
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return EstadoSLA.choices

    def queryset(self, request, queryset):
        if self.value() in EstadoSLA.values:
            return queryset.filter(estado_sla=self.value())
        return queryset


class TicketAdminForm(forms.ModelForm):
    # The fields save_model hands to the ticket services, which refuse a merged-away ticket.
    POR_SERVICIOS = ("estado", "asignado", "prioridad", "departamento")

    class Meta:
        model = Ticket
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets and readonly_fields decide

    def clean(self):
        datos = super().clean()
        if self.instance.fusionado_en is not None and set(self.changed_data) & set(
            self.POR_SERVICIOS
        ):
            raise forms.ValidationError(TicketFusionado.mensaje, code=TicketFusionado.codigo)
        return datos


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ["numero", "asunto", "estado", "sla", "prioridad", "departamento", "asignado",
                    "solicitante_email", "vence_primera_respuesta", "vence_resolucion",
                    "creado"]  # fmt: skip
    list_filter = [EstadoSLAFilter, "estado", "prioridad", "canal", "departamento"]
    list_select_related = ["departamento", "asignado"]
    search_fields = ["numero"]
    raw_id_fields = ["asignado", "relacionado"]
    readonly_fields = ["numero", "creado", "actualizado", "sla", "primera_respuesta_en",
                       "resuelto_en", "cerrado_en", "vence_primera_respuesta",
                       "aviso_primera_respuesta", "vence_resolucion", "aviso_resolucion",
                       "sla_pausado_en", "avisado_primera_respuesta_en",
                       "incumplido_primera_respuesta_en", "avisado_resolucion_en",
                       "incumplido_resolucion_en", "correos_rebotados", "fusionado_en"]  # fmt: skip
    inlines = [DetalleInline]
    show_full_result_count = False

    def get_queryset(self, request):
        return tickets_sla(tickets=super().get_queryset(request))

    @admin.display(description=_("SLA"), ordering="estado_sla")
    def sla(self, obj):
        return EstadoSLA(obj.estado_sla).label if hasattr(obj, "estado_sla") else ""

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Only what the form changed is written: the pipeline or the SLA sweep may have written
        # other fields since the form was loaded. State and assignee go through their services,
        # which keep the SLA clock in step, note the change in the thread and notify.
        # A new department picks its assignee by its queue rule, unless the form chose one too;
        # department and priority set the SLA due dates by their policy.
        servicios = {"estado", "asignado", "prioridad"}
        if obj.departamento is not None:
            servicios.add("departamento")
        campos = [f for f in form.changed_data if f not in servicios]
        if campos:
            obj.save(update_fields=[*campos, "actualizado"])
        if "departamento" in form.changed_data and obj.departamento is not None:
            ticket_transferir(ticket=obj, departamento=obj.departamento, por=request.user)
        if "prioridad" in form.changed_data:
            ticket_cambiar_prioridad(ticket=obj, prioridad=obj.prioridad, por=request.user)
        if "asignado" in form.changed_data:
            ticket_asignar(ticket=obj, agente=obj.asignado, por=request.user)
        if "estado" in form.changed_data:
            ticket_cambiar_estado(ticket=obj, estado=obj.estado, por=request.user)
        obj.refresh_from_db()

    def get_search_results(self, request, queryset, search_term):
        if not search_term:
            return queryset, False
        if search_term.isascii() and search_term.isdigit() and len(search_term) < 19:
            return queryset.filter(numero=int(search_term)), False
        return ticket_buscar(texto=search_term, tickets=queryset), False


@admin.register(CorreoFallido)
class CorreoFallidoAdmin(admin.ModelAdmin):
    list_display = ["id", "creado", "motivo", "fuente", "tamano", "reprocesado_en", "detalle"]
    list_select_related = ["detalle__ticket"]
    list_filter = ["motivo", ("reprocesado_en", admin.EmptyFieldListFilter)]
    readonly_fields = [f.name for f in CorreoFallido._meta.fields]
    actions = ["reprocesar"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_reprocesar_permission(self, request):
        # The rows are read-only here; reprocessing needs the model's change permission.
        return request.user.has_perm("incidencias.change_correofallido")

    @admin.action(description=_("Reprocess the selected failed mail"), permissions=["reprocesar"])
    def reprocesar(self, request, queryset):
        for fallido in queryset.filter(reprocesado_en__isnull=True):
            try:
                resultado = correo_fallido_reprocesar(fallido=fallido)
            except Exception as exc:
                self.message_user(request, f"#{fallido.pk}: {exc}", messages.ERROR)
                continue
            if resultado.ticket is None:
                self.message_user(request, f"#{fallido.pk}: {resultado.mensaje}", messages.WARNING)
            else:
                self.message_user(request, f"#{fallido.pk}: {resultado.mensaje}", messages.SUCCESS)


@admin.register(Notificacion)
class NotificacionAdmin(admin.ModelAdmin):
    list_display = ["id", "creado", "evento", "canal", "ticket", "destino", "estado", "intentos",
                    "proximo_intento", "error_corto"]  # fmt: skip
    list_filter = ["estado", "canal", "evento"]
    list_select_related = ["ticket", "departamento", "usuario"]
    search_fields = ["=ticket__numero", "=correo", "=message_id"]
    readonly_fields = [f.name for f in Notificacion._meta.fields]
    actions = ["reintentar"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("destination"))
    def destino(self, obj):
        return obj.destino

    @admin.display(description=_("last error"))
    def error_corto(self, obj):
        return obj.ultimo_error[:120]

    def has_reintentar_permission(self, request):
        # The rows are read-only here; retrying (a mail resent) needs the change permission.
        return request.user.has_perm("incidencias.change_notificacion")

    @admin.action(
        description=_("Retry the selected failed notifications"), permissions=["reintentar"]
    )
    def reintentar(self, request, queryset):
        n = notificacion_reintentar(notificaciones=queryset)
        self.message_user(request, _("%(n)d notifications queued again.") % {"n": n})


@admin.register(PreferenciaNotificacion)
class PreferenciaNotificacionAdmin(admin.ModelAdmin):
    list_display = ["departamento", "usuario", "evento", "destinatario", "canal", "activa"]
    list_filter = ["evento", "canal", "activa", "departamento"]
    list_select_related = ["departamento", "usuario"]
    raw_id_fields = ["usuario"]


@admin.register(RespuestaPredefinida)
class RespuestaPredefinidaAdmin(admin.ModelAdmin):
    list_display = ["nombre", "departamento", "activa"]
    list_filter = ["activa", "departamento"]
    list_select_related = ["departamento"]
    search_fields = ["nombre", "texto"]
