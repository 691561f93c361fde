"""The signed-in user's account pages: sign-out and password change. Sign-in is
`views.entrar` (with its 2FA step); idle sessions end in `middleware.SesionInactivaMiddleware`."""

from django import forms
from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from .acceso import AccesoBloqueado, CredencialesInvalidas, acceso_password
from .bitacora import client_ip


@require_POST
@csrf_protect
def salir(request):
    logout(request)
    messages.info(request, _("You have signed out."))
    return redirect("sso:login")


class CambioClaveForm(PasswordChangeForm):
    """Django's form, with the current password checked under the sign-in lockout (a stolen
    session cannot be used to guess the password at the hasher's pace)."""

    def __init__(self, *args, ip=None, **kwargs):
        self.ip = ip
        super().__init__(*args, **kwargs)

    def clean_old_password(self):
        actual = self.cleaned_data.get("old_password", "")
        try:
            acceso_password(
                identificador=self.user.get_username(),
                password=actual,
                ip=self.ip,
                comprobar=lambda usuario: usuario.pk == self.user.pk,
            )
        except AccesoBloqueado as exc:
            minutos = max(1, -(-exc.espera // 60))
            raise forms.ValidationError(
                _("Too many failed attempts. Try again in %(minutes)d min.") % {"minutes": minutos},
                code="bloqueado",
            ) from None
        except CredencialesInvalidas:
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            ) from None
        return actual


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@csrf_protect
@never_cache
@login_required
def cambiar_clave(request):
    form = CambioClaveForm(request.user, request.POST or None, ip=client_ip(request))
    if request.method == "POST" and form.is_valid():
        usuario = form.save()
        # Other sessions of this user end (their hash no longer matches); this one goes on.
        update_session_auth_hash(request, usuario)
        messages.success(request, _("Your password was changed."))
        return redirect("cuenta-clave")
    return render(request, "sso/cuenta_clave.html", {"form": form})
