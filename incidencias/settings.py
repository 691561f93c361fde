"""Settings for the portal, read from the environment.

Every variable is documented in `.env.example`. A `.env` file beside `manage.py` is read when
present (`make run` writes one with generated keys); real deployments set the environment.
Secrets may also be given as `NAME_FILE` pointing at a file that holds the value.
"""

import ipaddress
import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# ENV_FILE names the file to read (default: .env beside manage.py); empty reads none.
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """A comma-separated variable as a list, empty items dropped (`NAME=` means none)."""
    return [item.strip() for item in env.list(name, default=default or []) if item.strip()]


def secret(name, default=None):
    """Read a secret from NAME or from the file named by NAME_FILE."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = secret("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Client IPs come from REMOTE_ADDR unless the request came through one of these proxies.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP or CIDR.") from exc
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_celery_beat",
    "oauth2_provider",
    "sso",
    "incidencias",
    "credenciales",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "sso.middleware.SesionInactivaMiddleware",
    "sso.middleware.DosfaStaffMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "incidencias.seguridad.PoliticaContenidoMiddleware",
]

ROOT_URLCONF = "incidencias.urls"
WSGI_APPLICATION = "incidencias.wsgi.application"
AUTH_USER_MODEL = "sso.Usuario"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "incidencias.context_processors.navegacion",
            ],
        },
    },
]

# Form widgets drawn by Jinja2 (Django's own widget templates for it), Django's engine for the
# rest (admin widgets): incidencias/formularios.py.
FORM_RENDERER = "incidencias.formularios.Formularios"

# --- Database -------------------------------------------------------------------------------
# SQLite by default, so a checkout runs at once; PostgreSQL (psycopg 3) with DATABASE_URL.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Statements on server-bound cursors are prepared once they have run 5 times on a
        # connection. Django's own cursors bind on the client and never prepare; the few
        # hand-written statements of every API call do (incidencias.db.cursor_preparado).
        # DATABASE_PREPARED_STATEMENTS=0 behind a pooler that cannot keep prepared statements
        # (PgBouncer in transaction mode before 1.21).
        _options.setdefault("prepare_threshold", 5)
    if env.bool("DATABASE_SERVER_SIDE_BINDING", default=False):
        # Every ORM statement bound on the server too (and so prepared, with the above).
        _options["server_side_binding"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                # Web, worker and beat share the file: WAL lets readers run beside a writer,
                # IMMEDIATE transactions take the write lock up front instead of failing midway.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that stops answering must not hang every request that uses the cache.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="incidencias"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------
# With REDIS_URL, Redis is broker and result store. Without it, kombu's filesystem transport:
# it needs no server and no extra package, and processes on one machine share it through a
# directory (the SQLAlchemy transport would add a dependency and fight SQLite's write lock).
CELERY_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
    CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://"
    CELERY_RESULT_BACKEND = (
        env.str("CELERY_RESULT_BACKEND", default="") or f"file://{CELERY_DIR / 'results'}"
    )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DIR / "queue"),
        "data_folder_out": str(CELERY_DIR / "queue"),
        "processed_folder": str(CELERY_DIR / "processed"),
        # kombu's default is "control" relative to the working directory.
        "control_folder": str(CELERY_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Passwords ------------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "sso.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Spanish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="America/Costa_Rica")
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# Root of the files that `route` attachments of POST /api/correo/save point at.
ATTACHMENTS_ROOT = Path(env.str("ATTACHMENTS_ROOT", default=str(VAR_DIR / "adjuntos")))

# --- Mail -----------------------------------------------------------------------------------
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = secret("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="soporte@example.com")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
# Where the file backend (`make run`'s default) writes each sent mail.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "correo"))

# --- Tickets --------------------------------------------------------------------------------
# Largest message ingested whole; beyond it the text is kept and attachments that do not fit
# are left out with a note.
INGEST_MAX_BYTES = env.int("INGEST_MAX_BYTES", default=25 * 1024 * 1024)
# A mailbox message larger than this (by the server's RFC822.SIZE) is never fetched whole: only
# its first INGEST_MAX_BYTES (at most this) are read, kept and ingested, with a note.
IMAP_MAX_BYTES = env.int("IMAP_MAX_BYTES", default=50 * 1024 * 1024)
# A reply to a closed ticket reopens it within this many days; later, it opens a new ticket.
TICKET_REABRIR_DIAS = env.int("TICKET_REABRIR_DIAS", default=7)
# The ticket page: the largest total of files attached to one reply (bytes), and how often an
# open page tells the server it is still open (seconds; "Ana is also viewing this ticket").
TICKET_ADJUNTOS_MAX_BYTES = env.int("TICKET_ADJUNTOS_MAX_BYTES", default=10 * 1024 * 1024)
PRESENCIA_SEGUNDOS = env.int("PRESENCIA_SEGUNDOS", default=20)
# Seconds a process trusts its copy of mailboxes, routing rules and SLA policies.
CONFIG_CACHE_SECONDS = env.float("CONFIG_CACHE_SECONDS", default=60.0)
# Domain of the Message-IDs the portal generates (default: DEFAULT_FROM_EMAIL's domain).
MESSAGE_ID_DOMAIN = env.str("MESSAGE_ID_DOMAIN", default="")

# --- SLA clocks -----------------------------------------------------------------------------
# A target's warning is raised at this percentage of its business minutes (a policy can set
# its own); a breach raises the ticket's priority one step when SLA_SUBIR_PRIORIDAD is on.
SLA_AVISO_PORCENTAJE = env.int("SLA_AVISO_PORCENTAJE", default=80)
if not 1 <= SLA_AVISO_PORCENTAJE <= 99:
    raise ImproperlyConfigured("SLA_AVISO_PORCENTAJE must be between 1 and 99")
SLA_SUBIR_PRIORIDAD = env.bool("SLA_SUBIR_PRIORIDAD", default=False)
# At most this many tickets per sweep (the next sweep takes the rest).
SLA_BARRIDO_MAX = env.int("SLA_BARRIDO_MAX", default=5000)

# --- Notifications (the outbox) -------------------------------------------------------------
# A notification is tried this many times, waiting BACKOFF × 2^(n-1) seconds (at most
# BACKOFF_MAX) after the n-th failure; then it is marked failed (admin can retry it).
NOTIFICACIONES_MAX_INTENTOS = env.int("NOTIFICACIONES_MAX_INTENTOS", default=8)
NOTIFICACIONES_BACKOFF_SEGUNDOS = env.float("NOTIFICACIONES_BACKOFF_SEGUNDOS", default=30.0)
NOTIFICACIONES_BACKOFF_MAX_SEGUNDOS = env.float(
    "NOTIFICACIONES_BACKOFF_MAX_SEGUNDOS", default=3600.0
)
# A worker owns a notification it is sending for this long; after that the sweeper re-queues it.
NOTIFICACIONES_LEASE_SEGUNDOS = env.int("NOTIFICACIONES_LEASE_SEGUNDOS", default=300)
# The sweeper re-queues pending notifications overdue by this long (their task was lost).
NOTIFICACIONES_GRACIA_SEGUNDOS = env.int("NOTIFICACIONES_GRACIA_SEGUNDOS", default=60)
NOTIFICACIONES_BARRIDO_MAX = env.int("NOTIFICACIONES_BARRIDO_MAX", default=500)
# At most one acknowledgement per requester address in this window (stops mail loops).
NOTIFICACIONES_ACUSE_VENTANA_MINUTOS = env.int("NOTIFICACIONES_ACUSE_VENTANA_MINUTOS", default=60)

# --- Synology Chat --------------------------------------------------------------------------
SYNOLOGY_URL = env.str("SYNOLOGY_URL", default="").rstrip("/")
# The bot's token: what Synology's outgoing webhook sends, and what the chatbot API is called with.
SYNOLOGY_BOT_TOKEN = secret("SYNOLOGY_BOT_TOKEN", default="")
# Seconds to connect to, and to wait for an answer from, the NAS.
SYNOLOGY_TIMEOUT = env.float("SYNOLOGY_TIMEOUT", default=10.0)
# Extra attempts, at once, when Synology surely did not post (refused connection, "too fast").
SYNOLOGY_REINTENTOS = env.int("SYNOLOGY_REINTENTOS", default=2)
# Verify the NAS's TLS certificate: 1, 0, or the path of a CA bundle (self-signed NAS).
_synology_tls = env.str("SYNOLOGY_VERIFICAR_TLS", default="1")
SYNOLOGY_VERIFICAR_TLS = {"1": True, "0": False}.get(_synology_tls, _synology_tls)

# --- Identity -------------------------------------------------------------------------------
# Lifetime of user tokens "<id>|<secret>" (SSO/access, the login API).
USER_TOKEN_LIFETIME_HOURS = env.int("USER_TOKEN_LIFETIME_HOURS", default=24 * 7)
# Wrong PINs in a row that lock a device until an admin unlocks it (or sets a new PIN).
PIN_MAX_FALLOS = env.int("PIN_MAX_FALLOS", default=5)
# SSO/access: failed sign-ins counted per account and per client IP; after SSO_MAX_FALLOS of
# them within SSO_VENTANA_MINUTOS, that account (or IP) is refused with 429 until the window ends.
SSO_MAX_FALLOS = env.int("SSO_MAX_FALLOS", default=5)
SSO_VENTANA_MINUTOS = env.int("SSO_VENTANA_MINUTOS", default=15)
# The per-IP limit on its own: products that call from one server without forwarding their
# users' IPs through a trusted proxy may need it higher than the per-account one.
SSO_MAX_FALLOS_IP = env.int("SSO_MAX_FALLOS_IP", default=SSO_MAX_FALLOS)
if min(SSO_MAX_FALLOS, SSO_MAX_FALLOS_IP, SSO_VENTANA_MINUTOS) < 1:
    raise ImproperlyConfigured("SSO_MAX_FALLOS and SSO_VENTANA_MINUTOS must be at least 1.")
# Password recovery (SSO/password/forgot and reset): how long a reset link works, and how many
# reset mails one email address may ask for from one IP per hour.
PASSWORD_RESET_TIMEOUT_MINUTES = env.int("PASSWORD_RESET_TIMEOUT_MINUTES", default=60)
if PASSWORD_RESET_TIMEOUT_MINUTES < 1:
    raise ImproperlyConfigured("PASSWORD_RESET_TIMEOUT_MINUTES must be at least 1.")
PASSWORD_RESET_TIMEOUT = PASSWORD_RESET_TIMEOUT_MINUTES * 60  # Django's setting, in seconds
PASSWORD_FORGOT_MAX_PER_HOUR = env.int("PASSWORD_FORGOT_MAX_PER_HOUR", default=5)
DEFAULT_VIRTUAL_OPERATOR = env.str("DEFAULT_VIRTUAL_OPERATOR", default="default")
# Key of the HMAC that stores API-consumer secrets. Defaults to one derived from SECRET_KEY;
# set it on its own so that rotating SECRET_KEY does not invalidate every consumer.
CONSUMIDOR_HMAC_KEY = secret("CONSUMIDOR_HMAC_KEY", default="")
# How long a process trusts its cached copy of a consumer: a revoked or rotated secret stops
# working everywhere within this many seconds.
CONSUMIDOR_CACHE_SECONDS = env.float("CONSUMIDOR_CACHE_SECONDS", default=5.0)
# After `consumidor rotar`, the previous secret keeps working this many hours (0: at once), so
# a product can switch to the new one without downtime.
CONSUMIDOR_SOLAPAMIENTO_HORAS = env.float("CONSUMIDOR_SOLAPAMIENTO_HORAS", default=24.0)
if not 0 <= CONSUMIDOR_SOLAPAMIENTO_HORAS <= 24 * 90:
    raise ImproperlyConfigured("CONSUMIDOR_SOLAPAMIENTO_HORAS must be between 0 and 2160.")

# --- Two-factor authentication and the login API (sso.dosfa, /api/auth/...) -----------------
# Codes sent by email or SMS: 6 digits, valid this many minutes, single-use, bound to the login
# attempt (`temp_token`) they were sent for. A `temp_token` is burnt after this many wrong codes.
TWO_FACTOR_CODE_MINUTES = env.int("TWO_FACTOR_CODE_MINUTES", default=10)
TWO_FACTOR_MAX_WRONG = env.int("TWO_FACTOR_MAX_WRONG", default=5)
# Resending a code: at least this many seconds after the previous one, at most this many sends
# per login attempt.
TWO_FACTOR_RESEND_SECONDS = env.int("TWO_FACTOR_RESEND_SECONDS", default=60)
TWO_FACTOR_MAX_SENDS = env.int("TWO_FACTOR_MAX_SENDS", default=5)
if min(TWO_FACTOR_CODE_MINUTES, TWO_FACTOR_MAX_WRONG, TWO_FACTOR_MAX_SENDS) < 1:
    raise ImproperlyConfigured("TWO_FACTOR_* minutes and counts must be at least 1.")
# Staff must sign in with a second factor: without a confirmed device they are sent to the
# enrolment page (admin and staff pages), and the login API mails them a code meanwhile.
TWO_FACTOR_STAFF_REQUIRED = env.bool("TWO_FACTOR_STAFF_REQUIRED", default=False)
# The issuer name authenticator apps show next to the account.
TWO_FACTOR_ISSUER = env.str("TWO_FACTOR_ISSUER", default="Atención de Incidencias")
# SMS codes: "console" prints them (development); "http" posts them to SMS_GATEWAY_URL as JSON
# `{"to", "from", "text"}` with HTTP Basic credentials (see README).
SMS_BACKEND = env.str("SMS_BACKEND", default="console")
if SMS_BACKEND not in ("console", "http"):
    raise ImproperlyConfigured(f"SMS_BACKEND {SMS_BACKEND!r}: use console or http.")
SMS_GATEWAY_URL = env.str("SMS_GATEWAY_URL", default="")
SMS_GATEWAY_USER = env.str("SMS_GATEWAY_USER", default="")
SMS_GATEWAY_PASSWORD = secret("SMS_GATEWAY_PASSWORD", default="")
SMS_SENDER = env.str("SMS_SENDER", default="Incidencias")
SMS_TIMEOUT = env.float("SMS_TIMEOUT", default=10.0)
SMS_RETRIES = env.int("SMS_RETRIES", default=2)
if SMS_BACKEND == "http" and not SMS_GATEWAY_URL:
    raise ImproperlyConfigured("SMS_BACKEND=http needs SMS_GATEWAY_URL.")
# POST /api/auth/register: open to anyone, or closed (403). New accounts are customers, never
# staff, and join this group (its permissions are the `permissions` the login API returns).
REGISTRATION_OPEN = env.bool("REGISTRATION_OPEN", default=False)
REGISTRATION_GROUP = env.str("REGISTRATION_GROUP", default="user")
# Pages that need a signed-in user send others here: the portal's sign-in page (password, then
# the second factor), which also serves the OAuth2 authorization flow.
LOGIN_URL = env.str("LOGIN_URL", default="sso:login")

# RSA private key (PEM) that signs OpenID Connect id_tokens and the JWTs of /v2/auth/gettoken;
# its public half is published as JWKS, so other systems verify both with it. In a variable,
# line breaks may be written as "\n"; usually given as OIDC_RSA_PRIVATE_KEY_FILE.
OIDC_RSA_PRIVATE_KEY = secret("OIDC_RSA_PRIVATE_KEY", default="").replace("\\n", "\n")
# JWTs of /v2/auth/gettoken (RS256, signed with the key above): minutes they last, and the
# `iss` and `aud` claims they carry; a JWT whose `iss` or `aud` differ is refused.
JWT_LIFETIME_MINUTES = env.int("JWT_LIFETIME_MINUTES", default=120)
if not 1 <= JWT_LIFETIME_MINUTES <= 24 * 60:
    raise ImproperlyConfigured("JWT_LIFETIME_MINUTES must be between 1 and 1440.")
JWT_ISSUER = env.str("JWT_ISSUER", default="") or SITE_URL.rstrip("/")
JWT_AUDIENCE = env.str("JWT_AUDIENCE", default="") or f"{SITE_URL.rstrip('/')}/api"

# --- OAuth2 / OpenID Connect (django-oauth-toolkit) ---------------------------------------
# Lifetime of OAuth2 access tokens (the seed's expires_in: six months).
OAUTH2_ACCESS_TOKEN_SECONDS = env.int("OAUTH2_ACCESS_TOKEN_SECONDS", default=15724800)
# A refresh token dies this long after its access token expired without being refreshed
# (idle), and in any case this long after the sign-in that started its family (absolute).
OAUTH2_REFRESH_TOKEN_IDLE_SECONDS = env.int("OAUTH2_REFRESH_TOKEN_IDLE_SECONDS", default=30 * 86400)
OAUTH2_REFRESH_TOKEN_ABSOLUTE_SECONDS = env.int(
    "OAUTH2_REFRESH_TOKEN_ABSOLUTE_SECONDS", default=365 * 86400
)
OAUTH2_ID_TOKEN_SECONDS = env.int("OAUTH2_ID_TOKEN_SECONDS", default=3600)
if min(OAUTH2_ACCESS_TOKEN_SECONDS, OAUTH2_REFRESH_TOKEN_ABSOLUTE_SECONDS) < 60:
    raise ImproperlyConfigured("OAuth2 token lifetimes must be at least 60 seconds.")
# Issuer of id_tokens and discovery (default SITE_URL): the public URL of the portal.
OIDC_ISSUER = env.str("OIDC_ISSUER", default=SITE_URL).rstrip("/")
# Redirect URIs must be https; plain http only when this is on (development, RFC 8252 loopback).
OAUTH2_ALLOW_HTTP_REDIRECTS = env.bool("OAUTH2_ALLOW_HTTP_REDIRECTS", default=DEBUG)
OAUTH2_PROVIDER_APPLICATION_MODEL = "sso.AplicacionOAuth"
from sso.pkce import pkce_requerido  # noqa: E402 - a callable, not an import string

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": OIDC_RSA_PRIVATE_KEY,
    "OIDC_ISS_ENDPOINT": OIDC_ISSUER,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_VALIDATOR_CLASS": "sso.oauth.ValidadorOAuth2",
    "SCOPES": {
        "*": _("Full access"),
        "read": _("See your profile information"),
        "write": _("Change your information"),
        "profile": _("Your user profile"),
        "email": _("Your email address"),
        "sessions": _("Manage your active sessions"),
        "openid": _("Sign you in (OpenID Connect)"),
    },
    "DEFAULT_SCOPES": ["*"],
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH2_ACCESS_TOKEN_SECONDS,
    "ID_TOKEN_EXPIRE_SECONDS": OAUTH2_ID_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OAUTH2_REFRESH_TOKEN_IDLE_SECONDS,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    # PKCE for public clients; confidential ones may send it (and then it is checked).
    "PKCE_REQUIRED": pkce_requerido,
    "REQUEST_APPROVAL_PROMPT": "force",
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if OAUTH2_ALLOW_HTTP_REDIRECTS else ["https"],
    "ALLOW_URI_WILDCARDS": False,
    # RFC 9700 (OAuth 2.0 Security BCP), all on: no implicit or password grant, no PKCE
    # "plain", no tokens in query strings, `iss` in authorization responses, access and
    # refresh tokens stored only as SHA-256, and insecure settings fail `check --deploy`.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": not OAUTH2_ALLOW_HTTP_REDIRECTS,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# Keys of the encrypted fields: "id:base64(32 bytes)" pairs, comma-separated. New values are
# written under ENCRYPTION_ACTIVE_KEY (default: the last one); older ids stay to read old rows
# until `manage.py rotar_clave_cifrado` has re-encrypted them.
ENCRYPTION_KEYS = secret("ENCRYPTION_KEYS", default="")
ENCRYPTION_ACTIVE_KEY = env.str("ENCRYPTION_ACTIVE_KEY", default="")
if not ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured("ENCRYPTION_KEYS must be set when DEBUG is off.")
if ENCRYPTION_KEYS:
    from sso.crypto import parse_keys

    parse_keys(ENCRYPTION_KEYS, ENCRYPTION_ACTIVE_KEY)  # a bad key fails at start-up

# --- Audit log ------------------------------------------------------------------------------
BITACORA_RETENTION_DAYS = env.int("BITACORA_RETENTION_DAYS", default=365)

# --- Credential vault -----------------------------------------------------------------------
# Whether revealing a credential's secret requires a reason (kept in its audit row).
CREDENCIALES_MOTIVO_OBLIGATORIO = env.bool("CREDENCIALES_MOTIVO_OBLIGATORIO", default=False)
# Seconds a revealed secret stays on the page before it hides itself.
CREDENCIALES_REVELAR_SEGUNDOS = env.int("CREDENCIALES_REVELAR_SEGUNDOS", default=30)


def _dias(name: str, default: str) -> list[int]:
    valor = env.str(name, default=default)
    try:
        dias = sorted({int(d) for d in valor.split(",") if d.strip()})
    except ValueError:
        raise ImproperlyConfigured(f"{name}: whole days, comma-separated ({valor!r}).") from None
    if any(d < 0 for d in dias):
        raise ImproperlyConfigured(f"{name}: days cannot be negative ({valor!r}).")
    return dias


# Days before a credential's expiry (`vence`) its reminders go out; empty: no reminders.
CREDENCIALES_AVISO_DIAS = _dias("CREDENCIALES_AVISO_DIAS", "30,7,1")

# --- API ------------------------------------------------------------------------------------
# Largest request body the JSON APIs read; larger ones get 413. Some views allow more.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
# Django refuses (413) any body over this before reading it: the largest a view accepts
# (POST /api/correo/save carries whole mails in base64). Each view then applies its own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, INGEST_MAX_BYTES * 4 // 3 + 1024 * 1024)
# Requests each consumer may make to one consumo endpoint ("600/min", "20/s"); empty: no limit.
CONSUMO_RATE = env.str("CONSUMO_RATE", default="")
if CONSUMO_RATE and not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", CONSUMO_RATE):
    raise ImproperlyConfigured(f"CONSUMO_RATE {CONSUMO_RATE!r}: use N/s, N/min, N/hour or N/day.")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["sso.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "sso.api.envelopes.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Atención de Incidencias API",
    "DESCRIPTION": (
        "APIs of the incident-attention portal. Consumo endpoints authenticate with the "
        "`X-User-Consumo` and `X-User-Secret` headers and answer in envelope A."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The seed's yes/no flags (`acceso_ticket`, `update_token`) share one enum.
    "ENUM_NAME_OVERRIDES": {
        "SiNoEnum": ["S", "N"],
        # Tickets v1: a ticket's states, apart from other families' `estado`.
        "EstadoTicketEnum": "incidencias.models.Ticket.Estado",
        "EstadoActivoEnum": ["activo", "inactivo"],
    },
}

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# With Redis, page sessions and each user's permissions are read from it (one query fewer per
# request for each): sso/permisos.py. Without it, from the database, as every process on the
# machine sees the same rows but not the same in-memory cache. The backend is the same either
# way (a session keeps its backend's path: changing it would sign everyone out).
AUTHENTICATION_BACKENDS = ["sso.permisos.PermisosEnCache"]
PERMISSIONS_CACHE = env.bool("PERMISSIONS_CACHE", default=bool(REDIS_URL))
if REDIS_URL:
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
PERMISSIONS_CACHE_SECONDS = env.int("PERMISSIONS_CACHE_SECONDS", default=300)
# Seconds a thread entry's sanitised HTML stays in the cache for the ticket page.
HILO_HTML_CACHE_SECONDS = env.int("HILO_HTML_CACHE_SECONDS", default=86400)
# A signed-in page session ends after this many minutes without a request (0: never).
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=60)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from our own static files, no
# inline script or style anywhere (pages use data attributes and static/js/portal.js); images
# also as data: URIs (inline images of mail are served by the portal itself). No form-action:
# the consent page's answer redirects to the OAuth client, which browsers check against it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    },
}
# Messages live in the session, not in a signed-but-readable cookie (they can carry a secret
# shown once, such as a new API consumer's).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Error reports also hide URLs with credentials (database, cache, broker).
DEFAULT_EXCEPTION_REPORTER_FILTER = "incidencias.errors.FiltroInformeErrores"
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS")

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # At DEBUG it logs every request line, and Synology's token travels in the query string.
        "urllib3.connectionpool": {"level": "INFO"},
        # At DEBUG they log authorization codes, tokens and request bodies.
        "oauthlib": {"level": "INFO"},
        "oauth2_provider": {"level": "INFO"},
    },
}


# --- Schedules ------------------------------------------------------------------------------
# Every periodic task, in one place. Each interval (seconds) can be overridden from the
# environment; each run expires just before the next one would start.
def _every(name: str, default: int) -> dict:
    seconds = env.int(name, default=default)
    return {"schedule": seconds, "options": {"expires": max(seconds - 1, 1)}}


CELERY_BEAT_SCHEDULE = {
    "podar-bitacora": {"task": "sso.podar_bitacora", **_every("SCHEDULE_PODAR_BITACORA", 86400)},
    # Deletes ADI access requests a day after they expired (replay stays refused: the expiry
    # is signed into each request).
    "podar-solicitudes-adi": {
        "task": "sso.podar_solicitudes_adi",
        **_every("SCHEDULE_PODAR_ADI", 3600),
    },
    # Each mailbox is polled when its own interval (CuentaCorreo.intervalo_segundos) has
    # passed: this only says how often beat looks for mailboxes that are due.
    "sondear-buzones": {
        "task": "incidencias.sondear_buzones",
        **_every("SCHEDULE_SONDEAR_BUZONES", 30),
    },
    # Re-queues notifications whose delivery task was lost (broker down, worker killed).
    "barrer-notificaciones": {
        "task": "incidencias.barrer_notificaciones",
        **_every("SCHEDULE_BARRER_NOTIFICACIONES", 60),
    },
    # Raises SLA warnings and breaches that are due (incidencias.sla.sla_barrer).
    "barrer-sla": {"task": "incidencias.barrer_sla", **_every("SCHEDULE_BARRER_SLA", 60)},
    # Deletes expired OAuth2 codes and tokens, and the records of redeemed codes past the
    # absolute refresh lifetime (sso.oauth.oauth_limpiar).
    # Reminders before credentials expire (credenciales.avisos), once a day by default.
    "avisar-vencimientos": {
        "task": "credenciales.avisar_vencimientos",
        **_every("SCHEDULE_AVISOS_VENCIMIENTO", 86400),
    },
    "limpiar-tokens-oauth": {
        "task": "sso.limpiar_tokens_oauth",
        **_every("SCHEDULE_LIMPIAR_TOKENS_OAUTH", 3600),
    },
}
