from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from .canal import synology_enviar_canal
from .models import CanalSynology
from .synology import ErrorSynology


class CanalSynologyForm(forms.ModelForm):
    token = forms.CharField(
        label=_("incoming webhook token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=_(
            "Synology Chat > Integration > Incoming Webhooks: the value of `token` in the "
            "webhook URL, without quotes. Leave empty to keep the current token."
        ),
    )

    class Meta:
        model = CanalSynology
        fields = ["departamento", "nombre", "token", "activo"]

    def clean_token(self):
        token = (self.cleaned_data.get("token") or "").strip('"')
        if not token and self.instance.pk:
            return self.instance.token  # unchanged
        if not token:
            raise forms.ValidationError(_("This field is required."))
        return token


@admin.register(CanalSynology)
class CanalSynologyAdmin(admin.ModelAdmin):
    form = CanalSynologyForm
    list_display = ["nombre", "departamento", "activo", "creado"]
    list_filter = ["activo", "departamento"]
    search_fields = ["nombre", "departamento__nombre"]
    actions = ["enviar_prueba"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("departamento")
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("token")  # the list never decrypts tokens
        return queryset

    @admin.action(description=_("Send a test message"), permissions=["change"])
    def enviar_prueba(self, request, queryset):
        for canal in queryset.model.objects.filter(pk__in=queryset.values("pk")):
            try:
                synology_enviar_canal(
                    canal=canal,
                    texto=str(_("Test message from the incident-attention portal.")),
                )
            except ErrorSynology as exc:
                self.message_user(request, f"{canal}: {exc}", messages.ERROR)
            else:
                self.message_user(request, _("%(canal)s: sent.") % {"canal": canal})
