"""Two-factor pages: enrolling an authenticator app (QR code, recovery codes) and verifying a
signed-in session (the staff requirement sends staff here; see `sso.middleware`)."""

import django_otp
import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from . import dosfa
from .acceso import AccesoBloqueado
from .bitacora import client_ip
from .models import DispositivoTOTP

_SESION_TEMP = "dosfa_temp_token"


def _siguiente(request) -> str:
    destino = request.POST.get("next") or request.GET.get("next") or ""
    if destino and url_has_allowed_host_and_scheme(
        destino, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return destino
    return reverse("admin:index")


def _con_siguiente(nombre: str, siguiente: str) -> str:
    return f"{reverse(nombre)}?{urlencode({'next': siguiente})}"


@login_required
@sensitive_post_parameters("code")
def dosfa_enrolar(request):
    usuario = request.user
    siguiente = _siguiente(request)
    if dosfa.dosfa_activo(usuario=usuario) and not usuario.is_verified():
        # A password alone must not add a device to an account that has one.
        return redirect(_con_siguiente("dosfa-verificar", siguiente))
    activo = DispositivoTOTP.objects.filter(user=usuario, confirmed=True).exists()
    if activo:
        if request.method == "POST" and request.POST.get("accion") == "recuperacion":
            codigos = dosfa.recuperacion_generar(usuario=usuario)
            return render(
                request, "sso/dosfa_codigos.html", {"codigos": codigos, "next": siguiente}
            )
        return render(
            request,
            "sso/dosfa_activo.html",
            {"restantes": dosfa.recuperacion_restantes(usuario=usuario), "next": siguiente},
        )
    dispositivo = dosfa.totp_crear(usuario=usuario)
    if request.method == "POST":
        try:
            codigos = dosfa.totp_confirmar(dispositivo=dispositivo, code=request.POST.get("code"))
        except dosfa.CodigoIncorrecto:
            messages.error(request, _("That code is not valid. Try the one your app shows now."))
        else:
            django_otp.login(request, dispositivo)
            return render(
                request, "sso/dosfa_codigos.html", {"codigos": codigos, "next": siguiente}
            )
    uri = dosfa.totp_uri(dispositivo)
    secreto = dosfa.totp_secreto(dispositivo)
    contexto = {
        "qr": segno.make(uri, error="m").svg_data_uri(scale=5, border=2),
        "secreto": " ".join(secreto[i : i + 4] for i in range(0, len(secreto), 4)),
        "uri": uri,
        "next": siguiente,
    }
    return render(request, "sso/dosfa_enrolar.html", contexto)


@login_required
@sensitive_post_parameters("code")
def dosfa_verificar_sesion(request):
    usuario = request.user
    siguiente = _siguiente(request)
    if usuario.is_verified():
        return redirect(siguiente)
    if not dosfa.dosfa_activo(usuario=usuario):
        return redirect(_con_siguiente("dosfa-enrolar", siguiente))
    temp_token = request.session.get(_SESION_TEMP)
    if request.method == "POST" and temp_token:
        try:
            verificado = dosfa.dosfa_verificar(temp_token=temp_token, code=request.POST.get("code"))
        except dosfa.CodigoIncorrecto:
            messages.error(request, _("That code is not valid."))
        except dosfa.IntentoInvalido:
            request.session.pop(_SESION_TEMP, None)
            temp_token = None
            messages.error(
                request, _("Too many wrong codes or the code expired: a new one is due.")
            )
        except AccesoBloqueado:
            messages.error(request, _("Too many failed attempts. Try again later."))
        else:
            request.session.pop(_SESION_TEMP, None)
            if verificado.pk == usuario.pk and verificado.otp_device is not None:
                django_otp.login(request, verificado.otp_device)
                return redirect(siguiente)
            temp_token = None
    if not temp_token:
        try:
            intento = dosfa.dosfa_iniciar(usuario=usuario, ip=client_ip(request))
        except (dosfa.MetodoNoDisponible, dosfa.EnvioFallido):
            messages.error(request, _("The verification code could not be sent. Try again."))
            return render(request, "sso/dosfa_verificar.html", {"next": siguiente}, status=503)
        request.session[_SESION_TEMP] = intento.temp_token
        if intento.enviado_a:
            messages.info(
                request, _("We sent a code to %(destino)s.") % {"destino": intento.enviado_a}
            )
    return render(request, "sso/dosfa_verificar.html", {"next": siguiente})
