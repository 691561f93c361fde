from django import forms
from django.utils.translation import gettext_lazy as _


class EntradaForm(forms.Form):
    login = forms.CharField(
        label=_("Email or phone"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ClienteForm(forms.Form):
    nombre = forms.CharField(label=_("Name"), max_length=255)
    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line. Must match exactly what the application sends."),
    )
    primera_parte = forms.BooleanField(
        label=_("First-party application"),
        required=False,
        help_text=_("Its users are not asked to authorize it."),
    )


class ClienteNuevoForm(ClienteForm):
    confidencial = forms.BooleanField(
        label=_("Confidential (has a server that keeps a secret)"),
        required=False,
        initial=True,
        help_text=_("Leave unticked for browser and mobile apps: they must use PKCE."),
    )
