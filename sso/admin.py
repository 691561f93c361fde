from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from . import consumidores, dispositivos, tokens
from .models import (
    Bitacora,
    ConsumidorAPI,
    Departamento,
    Dispositivo,
    DispositivoCodigo,
    DispositivoTOTP,
    OperadorVirtual,
    Rol,
    SesionApp,
    Sistema,
    SolicitudADI,
    TokenUsuario,
    Unidad,
    Usuario,
    normalize_networks,
)


class UnidadInline(admin.TabularInline):
    model = Unidad
    extra = 0


@admin.register(Departamento)
class DepartamentoAdmin(admin.ModelAdmin):
    list_display = ["nombre", "correo", "activo"]
    list_filter = ["activo"]
    search_fields = ["nombre"]
    inlines = [UnidadInline]


@admin.register(Unidad)
class UnidadAdmin(admin.ModelAdmin):
    list_display = ["nombre", "clave", "departamento", "activo"]
    list_filter = ["departamento", "activo"]
    search_fields = ["nombre", "clave"]


@admin.register(Rol)
class RolAdmin(admin.ModelAdmin):
    search_fields = ["nombre"]


@admin.register(Sistema)
class SistemaAdmin(admin.ModelAdmin):
    list_display = ["alias", "nombre", "dominio", "activo"]
    list_filter = ["activo"]
    search_fields = ["alias", "nombre", "dominio"]


@admin.register(OperadorVirtual)
class OperadorVirtualAdmin(admin.ModelAdmin):
    list_display = ["alias", "nombre", "activo"]
    list_filter = ["activo"]
    search_fields = ["alias", "nombre"]


@admin.register(Usuario)
class UsuarioAdmin(UserAdmin):
    list_display = ["username", "nombre", "email", "departamento", "jefe", "is_active"]
    list_filter = [
        "departamento",
        "tipo_usuario",
        "jefe",
        "acceso_ticket",
        "is_active",
        "operador_virtual",
    ]
    search_fields = ["username", "nombre", "email", "cedula"]
    list_select_related = ["departamento"]
    filter_horizontal = ["accesos_sistemas", "groups", "user_permissions"]
    fieldsets = [
        *UserAdmin.fieldsets,
        (
            _("Organisation"),
            {
                "fields": [
                    "nombre",
                    "cedula",
                    "tipo_usuario",
                    "departamento",
                    "rol",
                    "jefe",
                    "acceso_ticket",
                    "accesos_sistemas",
                    "operador_virtual",
                    "jwt_valido_desde",
                ]
            },
        ),
        (_("Contact"), {"fields": ["phone", "movil", "ext", "id_synology"]}),
    ]
    readonly_fields = ["last_login", "date_joined", "jwt_valido_desde"]


class ConsumidorForm(forms.ModelForm):
    permisos = forms.MultipleChoiceField(
        label=_("permissions"),
        choices=ConsumidorAPI.Permiso.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    ips_permitidas = forms.CharField(
        label=_("allowed IPs"),
        required=False,
        help_text=_(
            "IP addresses or networks (CIDR), comma-separated, e.g. 10.0.0.0/8, 2001:db8::/32; "
            "empty: any address."
        ),
    )

    class Meta:
        model = ConsumidorAPI
        fields = ["nombre", "descripcion", "permisos", "ips_permitidas", "activo"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["ips_permitidas"] = ", ".join(self.instance.ips_permitidas or [])

    def clean_ips_permitidas(self):
        raw = self.cleaned_data.get("ips_permitidas") or ""
        ips = [item.strip() for item in raw.replace("\n", ",").split(",") if item.strip()]
        try:
            return normalize_networks(ips)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["ips_permitidas"]) from exc


@admin.register(ConsumidorAPI)
class ConsumidorAPIAdmin(admin.ModelAdmin):
    form = ConsumidorForm
    list_display = [
        "nombre",
        "descripcion",
        "permisos",
        "ips",
        "activo",
        "ultimo_uso",
        "creado",
        "rotado",
        "anterior_vence",
        "revocado",
    ]
    list_filter = ["activo"]
    search_fields = ["nombre", "descripcion"]
    readonly_fields = ["creado", "rotado", "anterior_vence", "ultimo_uso", "revocado"]
    actions = ["rotar", "revocar"]

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the audit log keeps pointing at the consumer

    @admin.display(description=_("allowed IPs"))
    def ips(self, obj):
        return ", ".join(obj.ips_permitidas) or _("any")

    def save_model(self, request, obj, form, change):
        if change:
            # Only what the form edits: the secrets, the overlap and the last use may have
            # changed since the form was loaded (a rotation, a request).
            obj.save(update_fields=form.Meta.fields)
            # A rename leaves the old name cached too: forget both.
            for nombre in {form.initial.get("nombre"), obj.nombre} - {None}:
                consumidores.forget_now_and_on_commit(nombre)
            return
        created, secret = consumidores.consumidor_crear(
            nombre=obj.nombre,
            permisos=obj.permisos,
            descripcion=obj.descripcion,
            activo=obj.activo,
            ips_permitidas=obj.ips_permitidas,
        )
        obj.pk = created.pk
        self.message_user(
            request,
            _("Secret of %(name)s (shown only now): %(secret)s")
            % {"name": created.nombre, "secret": secret},
            messages.WARNING,
        )

    @admin.action(
        description=_("Rotate the secret of the selected consumers"), permissions=["change"]
    )
    def rotar(self, request, queryset):
        for consumidor in queryset:
            try:
                secret = consumidores.consumidor_rotar(consumidor=consumidor)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
                continue
            if consumidor.anterior_vence:
                previous = _("The previous one works until %(until)s.") % {
                    "until": date_format(
                        timezone.localtime(consumidor.anterior_vence), "DATETIME_FORMAT"
                    )
                }
            else:
                previous = _("The previous one no longer works.")
            self.message_user(request, f"{consumidor.nombre}: {previous}", messages.INFO)
            # Its own message, the secret last: the contract of the command too.
            self.message_user(
                request,
                _("New secret of %(name)s (shown only now): %(secret)s")
                % {"name": consumidor.nombre, "secret": secret},
                messages.WARNING,
            )

    @admin.action(description=_("Revoke the selected consumers"), permissions=["change"])
    def revocar(self, request, queryset):
        for consumidor in queryset:
            consumidores.consumidor_revocar(consumidor=consumidor)
        self.message_user(request, _("Consumers revoked."), messages.SUCCESS)


@admin.register(Bitacora)
class BitacoraAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["id", "creado", "metodo", "endpoint", "estado", "consumidor", "usuario", "ip"]
    list_filter = ["estado", "metodo"]
    search_fields = ["endpoint", "=ip", "=id_padre"]
    list_select_related = ["consumidor", "usuario"]
    date_hierarchy = "creado"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DispositivoForm(forms.ModelForm):
    pin = forms.CharField(
        label=_("PIN"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("4 to 12 digits. Leave empty to keep the current PIN."),
    )

    class Meta:
        model = Dispositivo
        fields = ["usuario", "nombre", "activo"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("pin"):
            self.add_error("pin", _("A new device needs a PIN."))
        return cleaned


@admin.register(Dispositivo)
class DispositivoAdmin(admin.ModelAdmin):
    form = DispositivoForm
    list_display = ["nombre", "usuario", "activo", "fallos_pin", "bloqueado", "creado"]
    list_filter = ["activo"]
    search_fields = ["nombre", "usuario__username", "usuario__email"]
    raw_id_fields = ["usuario"]
    readonly_fields = ["fallos_pin", "bloqueado", "revocado", "creado"]
    actions = ["revocar"]

    def save_model(self, request, obj, form, change):
        pin = form.cleaned_data.get("pin")
        if not change:
            nuevo = dispositivos.dispositivo_registrar(
                usuario=obj.usuario, nombre=obj.nombre, pin=pin
            )
            obj.pk = nuevo.pk
            return
        super().save_model(request, obj, form, change)
        if pin:
            dispositivos.dispositivo_cambiar_pin(dispositivo=obj, pin=pin)

    @admin.action(description=_("Revoke the selected devices"), permissions=["change"])
    def revocar(self, request, queryset):
        for dispositivo in queryset:
            dispositivos.dispositivo_revocar(dispositivo=dispositivo)


@admin.register(TokenUsuario)
class TokenUsuarioAdmin(admin.ModelAdmin):
    list_display = ["id", "usuario", "sistema", "dispositivo", "ip", "creado", "ultimo_uso",
                    "expira", "revocado"]  # fmt: skip
    list_filter = [("revocado", admin.EmptyFieldListFilter), "sistema"]
    search_fields = ["usuario__username", "usuario__email", "=ip"]
    list_select_related = ["usuario", "sistema", "dispositivo"]
    readonly_fields = ["usuario", "sistema", "dispositivo", "ip", "creado", "ultimo_uso", "expira",
                       "revocado"]  # fmt: skip
    actions = ["revocar"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revocar(self, request, queryset):
        for token in queryset:
            tokens.token_revocar(token=token)


@admin.register(SolicitudADI)
class SolicitudADIAdmin(admin.ModelAdmin):
    list_display = ["id", "sistema", "username", "creado", "expira", "usado"]
    list_filter = ["sistema"]
    search_fields = ["username", "email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DispositivoCodigo)
class DispositivoCodigoAdmin(admin.ModelAdmin):
    """A user's email or SMS second factor (codes themselves are per login attempt)."""

    list_display = ["id", "user", "metodo", "destino", "confirmed", "creado"]
    list_filter = ["metodo", "confirmed"]
    search_fields = ["user__username", "user__email", "destino"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]


@admin.register(DispositivoTOTP)
class DispositivoTOTPAdmin(admin.ModelAdmin):
    """Authenticator apps: listed, and deleted when a user loses theirs (they enrol again)."""

    list_display = ["id", "user", "name", "confirmed", "creado"]
    list_filter = ["confirmed"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "confirmed", "creado"]

    def has_add_permission(self, request):
        return False


@admin.register(SesionApp)
class SesionAppAdmin(admin.ModelAdmin):
    list_display = ["id", "usuario", "app_name", "ip_address", "creado", "terminado"]
    list_filter = [("terminado", admin.EmptyFieldListFilter)]
    search_fields = ["usuario__username", "usuario__email", "app_name", "=ip_address"]
    list_select_related = ["usuario"]
    readonly_fields = ["usuario", "token", "app_name", "ip_address", "user_agent", "creado",
                       "terminado"]  # fmt: skip

    def has_add_permission(self, request):
        return False
