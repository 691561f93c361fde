"""Pages of the authorization server: the sign-in page of the OAuth2 flow, the consent page,
token introspection, and the staff page that manages OAuth clients."""

import calendar
import hashlib
import logging
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.views import AuthorizationView
from oauthlib.common import Request as OauthlibRequest

from . import dosfa, oauth
from .acceso import AccesoBloqueado, CredencialesInvalidas, acceso_completado, acceso_login
from .bitacora import client_ip
from .forms import ClienteForm, ClienteNuevoForm, EntradaForm
from .models import AplicacionOAuth

logger = logging.getLogger("incidencias.sso.views")


# --- Sign-in ----------------------------------------------------------------------------------


def _backend() -> str:
    """The backend the session is signed in with: the project's (settings), which checks the
    password itself here; the session keeps its path and every request loads the user by it."""
    return settings.AUTHENTICATION_BACKENDS[0]


# The sign-in waiting for its second factor: {"temp_token", "next", "metodo", "reenvios"}.
_SESION_DOSFA = "sso_entrada_dosfa"


def _seguro(request, destino: str) -> str:
    if destino and url_has_allowed_host_and_scheme(
        destino, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return destino
    return "/"


def _siguiente(request) -> str:
    return _seguro(request, request.POST.get("next") or request.GET.get("next") or "")


def _bloqueado(espera: int) -> str:
    minutos = max(1, -(-espera // 60))
    return _("Too many failed attempts. Try again in %(minutes)d min.") % {"minutes": minutos}


def _enviado(request, intento) -> None:
    if intento.enviado_a:
        messages.info(request, _("We sent a code to %(destino)s.") % {"destino": intento.enviado_a})


def _segundo_factor(request, usuario, siguiente):
    """The 2FA step after a right password: a response that takes the user to it, or None
    when the user has no second factor (then they are signed in at once).

    The attempt's `temp_token` waits in the (still anonymous) session; raises
    dosfa.MetodoNoDisponible or dosfa.EnvioFallido when the code cannot be sent.
    """
    if not dosfa.dosfa_requerido(usuario=usuario):
        return None
    intento = dosfa.dosfa_iniciar(usuario=usuario, ip=client_ip(request))
    request.session[_SESION_DOSFA] = {
        "temp_token": intento.temp_token,
        "next": siguiente,
        "metodo": intento.metodo,
        # Where a new code may be sent (the page's resend buttons).
        "reenvios": [m for m in dosfa.dosfa_metodos(usuario=usuario) if m != dosfa.TOTP],
    }
    _enviado(request, intento)
    return redirect("sso:login-2fa")


def _entrar_de_nuevo(request, siguiente: str, mensaje: str):
    """The attempt is over (burnt, expired, used): back to the sign-in page."""
    request.session.pop(_SESION_DOSFA, None)
    messages.error(request, mensaje)
    return redirect(f"{reverse('sso:login')}?{urlencode({'next': siguiente})}")


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def entrar(request):
    siguiente = _siguiente(request)
    form = EntradaForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            usuario = acceso_login(
                identificador=form.cleaned_data["login"],
                password=form.cleaned_data["password"],
                ip=client_ip(request),
            )
            respuesta = _segundo_factor(request, usuario, siguiente)
        except AccesoBloqueado as exc:
            form.add_error(None, _bloqueado(exc.espera))
            status = 429
        except CredencialesInvalidas:
            form.add_error(None, _("Wrong email, phone or password."))
        except (dosfa.MetodoNoDisponible, dosfa.EnvioFallido):
            form.add_error(None, _("The verification code could not be sent. Try again."))
            status = 503
        else:
            if respuesta is not None:
                return respuesta
            acceso_completado(usuario=usuario)
            auth_login(request, usuario, backend=_backend())
            return redirect(siguiente)
    contexto = {"form": form, "next": siguiente}
    return render(request, "sso/entrar.html", contexto, status=status)


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def entrar_dosfa(request):
    """The second step of the sign-in page: the code of the user's app, email or SMS (or a
    recovery code), and a new code by email or SMS on request."""
    pendiente = request.session.get(_SESION_DOSFA)
    if not isinstance(pendiente, dict) or not pendiente.get("temp_token"):
        return redirect("sso:login")
    temp_token = pendiente["temp_token"]
    siguiente = _seguro(request, pendiente.get("next", ""))
    errores = []
    status = 200
    if request.method == "POST" and request.POST.get("reenviar"):
        try:
            intento = dosfa.dosfa_reenviar(temp_token=temp_token, metodo=request.POST["reenviar"])
        except dosfa.IntentoInvalido:
            return _entrar_de_nuevo(
                request, siguiente, _("The verification expired. Sign in again.")
            )
        except dosfa.MetodoNoDisponible:
            errores.append(_("That verification method is not available for your account."))
            status = 400
        except dosfa.ReenvioLimitado as exc:
            errores.append(
                _("Wait %(seconds)d s before asking for another code.") % {"seconds": exc.espera}
            )
            status = 429
        except dosfa.EnvioFallido:
            errores.append(_("The verification code could not be sent. Try again."))
            status = 503
        else:
            request.session[_SESION_DOSFA] = {**pendiente, "metodo": intento.metodo}
            _enviado(request, intento)
            return redirect("sso:login-2fa")
    elif request.method == "POST":
        try:
            usuario = dosfa.dosfa_verificar(temp_token=temp_token, code=request.POST.get("code"))
        except dosfa.IntentoQuemado:
            return _entrar_de_nuevo(request, siguiente, _("Too many wrong codes. Sign in again."))
        except dosfa.IntentoInvalido:
            return _entrar_de_nuevo(
                request, siguiente, _("The verification expired. Sign in again.")
            )
        except dosfa.CodigoIncorrecto as exc:
            errores.append(
                _("That code is not valid. Attempts left: %(left)d.") % {"left": exc.restantes}
            )
        except AccesoBloqueado as exc:
            errores.append(_bloqueado(exc.espera))
            status = 429
        else:
            # dosfa_verificar cleared the account's failures: the whole sign-in succeeded. The
            # user carries `otp_device`, so django-otp marks the session verified on login.
            request.session.pop(_SESION_DOSFA, None)
            auth_login(request, usuario, backend=_backend())
            return redirect(siguiente)
    metodo = pendiente.get("metodo")
    contexto = {
        "errores": errores,
        "next": siguiente,
        "totp": metodo == dosfa.TOTP,
        "reenvios": [
            (valor, nombre)
            for valor, nombre in ((dosfa.EMAIL, _("by email")), (dosfa.SMS, _("by SMS")))
            if valor in pendiente.get("reenvios", ())
        ],
    }
    return render(request, "sso/entrar_dosfa.html", contexto, status=status)


# --- Authorization and consent -------------------------------------------------------------


class AutorizarView(AuthorizationView):
    """DOT's authorization endpoint with our pages. A request whose client or redirect URI is
    wrong gets an error page — never a redirect — also before the user has signed in."""

    template_name = "sso/autorizar.html"

    def handle_no_permission(self):
        try:
            self.validate_authorization_request(self.request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        return super().handle_no_permission()


# --- Introspection (RFC 7662) -------------------------------------------------------------------


def _cliente_autenticado(request) -> AplicacionOAuth | None:
    """The confidential client whose credentials the request carries (public clients have
    no secret, so they cannot authenticate)."""
    core = get_oauthlib_core()
    uri, metodo, cuerpo, cabeceras = core._extract_params(request)
    peticion = OauthlibRequest(uri, metodo, cuerpo, cabeceras)
    if not core.server.request_validator.authenticate_client(peticion):
        return None
    cliente = peticion.client
    return cliente if cliente.client_type == AplicacionOAuth.CLIENT_CONFIDENTIAL else None


@csrf_exempt
@never_cache
def introspeccion(request):
    """A confidential client asks about a token; only its own tokens are ever `active`."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    cliente = _cliente_autenticado(request)
    if cliente is None:
        respuesta = JsonResponse({"error": "invalid_client"}, status=401)
        respuesta["WWW-Authenticate"] = 'Basic realm="oauth"'
        return respuesta
    raw = request.POST.get("token", "")
    if not raw:
        return JsonResponse({"error": "invalid_request"}, status=400)
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    token = (
        get_access_token_model()
        .objects.select_related("user")
        .filter(token_checksum=checksum, application=cliente)
        .first()
    )
    if token is None or token.is_expired() or (token.user and not token.user.is_active):
        return JsonResponse({"active": False})
    datos = {
        "active": True,
        "scope": token.scope,
        "client_id": cliente.client_id,
        "token_type": "Bearer",
        "exp": calendar.timegm(token.expires.utctimetuple()),
        "iat": calendar.timegm(token.created.utctimetuple()),
    }
    if token.user:
        datos["sub"] = str(token.user.pk)
        datos["username"] = token.user.get_username()
    return JsonResponse(datos)


# --- Client management (staff) -------------------------------------------------------------------


def staff_requerido(vista):
    """Anonymous users go to sign in; signed-in users who are not staff get 403."""

    @wraps(vista)
    def envuelta(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return vista(request, *args, **kwargs)

    return envuelta


def _errores_del_modelo(form, exc: ValidationError) -> None:
    campos = {"name": "nombre", "redirect_uris": "redirect_uris"}
    for campo, errores in exc.message_dict.items():
        form.add_error(campos.get(campo), errores)


def _secreto_una_vez(request, secreto: str) -> None:
    messages.warning(
        request,
        _("Client secret, shown only this once — copy it now: %(secret)s") % {"secret": secreto},
    )


@staff_requerido
@never_cache
def clientes(request):
    lista = AplicacionOAuth.objects.order_by("-activo", "name")
    return render(request, "sso/clientes/lista.html", {"clientes": lista})


@staff_requerido
@never_cache
def cliente_nuevo(request):
    form = ClienteNuevoForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cliente, secreto = oauth.cliente_crear(
                nombre=form.cleaned_data["nombre"],
                redirect_uris=form.cleaned_data["redirect_uris"],
                confidencial=form.cleaned_data["confidencial"],
                primera_parte=form.cleaned_data["primera_parte"],
                creado_por=request.user,
            )
        except ValidationError as exc:
            _errores_del_modelo(form, exc)
        else:
            messages.success(request, _("Client created."))
            if secreto:
                _secreto_una_vez(request, secreto)
            return redirect("sso:cliente", pk=cliente.pk)
    return render(request, "sso/clientes/nuevo.html", {"form": form})


@staff_requerido
@never_cache
def cliente(request, pk):
    cliente = get_object_or_404(AplicacionOAuth, pk=pk)
    inicial = {
        "nombre": cliente.name,
        "redirect_uris": "\n".join(cliente.redirect_uris.split()),
        "primera_parte": cliente.skip_authorization,
    }
    form = ClienteForm(request.POST or None, initial=inicial)
    if request.method == "POST" and form.is_valid():
        try:
            oauth.cliente_editar(
                cliente=cliente,
                nombre=form.cleaned_data["nombre"],
                redirect_uris=form.cleaned_data["redirect_uris"],
                primera_parte=form.cleaned_data["primera_parte"],
            )
        except ValidationError as exc:
            cliente.refresh_from_db()
            _errores_del_modelo(form, exc)
        else:
            messages.success(request, _("Changes saved."))
            return redirect("sso:cliente", pk=cliente.pk)
    contexto = {
        "cliente": cliente,
        "form": form,
        "confidencial": cliente.client_type == AplicacionOAuth.CLIENT_CONFIDENTIAL,
        "autorizar": request.build_absolute_uri(reverse("oauth2_provider:authorize")),
    }
    return render(request, "sso/clientes/cliente.html", contexto)


@staff_requerido
@require_POST
def cliente_rotar(request, pk):
    cliente = get_object_or_404(AplicacionOAuth, pk=pk)
    try:
        secreto = oauth.cliente_rotar_secreto(cliente=cliente)
    except ValueError:
        messages.error(request, _("Public clients have no secret."))
    else:
        _secreto_una_vez(request, secreto)
    return redirect("sso:cliente", pk=cliente.pk)


@staff_requerido
@require_POST
def cliente_desactivar(request, pk):
    cliente = get_object_or_404(AplicacionOAuth, pk=pk)
    oauth.cliente_desactivar(cliente=cliente)
    messages.success(request, _("Client disabled; its tokens were revoked."))
    return redirect("sso:cliente", pk=cliente.pk)


@staff_requerido
@require_POST
def cliente_activar(request, pk):
    cliente = get_object_or_404(AplicacionOAuth, pk=pk)
    oauth.cliente_activar(cliente=cliente)
    messages.success(request, _("Client enabled."))
    return redirect("sso:cliente", pk=cliente.pk)
