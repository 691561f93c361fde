"""Admin of the vault: `clave` is write-only (an empty field keeps the current secret), and the
history and the audit are read-only lists that never show a secret."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import services
from .models import AccesoCredencial, Credencial, MiembroUnidad, TipoCredencial


@admin.register(TipoCredencial)
class TipoCredencialAdmin(admin.ModelAdmin):
    list_display = ["nombre"]
    search_fields = ["nombre"]


class CredencialForm(forms.ModelForm):
    nueva_clave = forms.CharField(
        label=_("Secret"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only: leave empty to keep the current secret."),
    )

    url = forms.URLField(label=_("URL"), required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = Credencial
        fields = ["tipo", "departamento", "unidad", "usuario", "url", "vence", "nota"]

    def clean(self):
        data = super().clean()
        if self.instance.pk is None and not data.get("nueva_clave"):
            self.add_error("nueva_clave", _("A new credential needs a secret."))
        return data


@admin.register(Credencial)
class CredencialAdmin(admin.ModelAdmin):
    form = CredencialForm
    list_display = ["usuario", "tipo", "departamento", "unidad", "vence", "actualizado"]
    list_filter = ["tipo", "departamento"]
    search_fields = ["usuario", "nota"]
    list_select_related = ["tipo", "departamento", "unidad"]

    def save_model(self, request, obj, form, change):
        from sso.bitacora import client_ip

        datos = {campo: form.cleaned_data.get(campo) for campo in CredencialForm.Meta.fields}
        clave = form.cleaned_data.get("nueva_clave") or None
        if change:
            services.credencial_editar(
                credencial=obj, por=request.user, ip=client_ip(request), clave=clave, **datos
            )
        else:
            nueva = services.credencial_crear(
                por=request.user, ip=client_ip(request), clave=clave, **datos
            )
            obj.pk = nueva.pk

    def delete_model(self, request, obj):
        from sso.bitacora import client_ip

        services.credencial_borrar(credencial=obj, por=request.user, ip=client_ip(request))


@admin.register(AccesoCredencial)
class AccesoCredencialAdmin(admin.ModelAdmin):
    list_display = ["momento", "accion", "usuario", "credencial_descripcion", "ip", "motivo"]
    list_filter = ["accion"]
    readonly_fields = [f.name for f in AccesoCredencial._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MiembroUnidad)
class MiembroUnidadAdmin(admin.ModelAdmin):
    list_display = ["usuario", "unidad"]
    raw_id_fields = ["usuario"]
