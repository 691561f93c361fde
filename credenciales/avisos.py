"""Reminders before a credential expires, by email through the notification outbox.

`credenciales_avisar_vencimientos` (the daily Celery task's body) looks at the credentials that
expire within the largest of CREDENCIALES_AVISO_DIAS (default 30, 7 and 1 days) and, for each,
sends the reminder of the nearest threshold not yet passed: a credential expiring in 5 days
gets the 7-day one, and the 1-day one four days later. Each (credential, expiry date,
threshold) is sent at most once, by the outbox's once-only key, so two runs at the same time
send it once, and changing `vence` arms the reminders again for the new date.

Who is told: the heads of the credential's department (`Usuario.jefe`: they see every unit of
it) and whoever created it, while still active and in that department; never anyone else. The
mail names the credential (type, account, department, unit, date) and links to its admin
page; it never holds the secret.
"""

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from sso import avisos
from sso.models import Usuario

from .models import Credencial


def umbral(quedan: int, dias: list[int]) -> int | None:
    """The threshold a credential `quedan` days from expiry is at: the smallest that is not
    below it; None when it expires later than every threshold, or has expired."""
    if quedan < 0:
        return None
    return min((d for d in dias if d >= quedan), default=None)


def clave_unica(credencial: Credencial, dias: int) -> str:
    return f"credencial_vence:{credencial.pk}:{credencial.vence.isoformat()}:{dias}"


def _mensaje(credencial: Credencial, quedan: int) -> tuple[str, str]:
    cuenta = f"{credencial.tipo.nombre} · {credencial.usuario}"
    lugar = credencial.departamento.nombre
    if credencial.unidad_id:
        lugar = f"{lugar} - {credencial.unidad.nombre}"
    vence = formats.date_format(credencial.vence, "DATE_FORMAT")
    enlace = settings.SITE_URL.rstrip("/") + reverse(
        "admin:credenciales_credencial_change", args=[credencial.pk]
    )
    asunto = _("Credential expires on %(fecha)s: %(cuenta)s") % {"fecha": vence, "cuenta": cuenta}
    if quedan == 0:
        cuando = _("today")
    elif quedan == 1:
        cuando = _("tomorrow")
    else:
        cuando = _("in %(dias)d days") % {"dias": quedan}
    texto = "\n\n".join(
        [
            _("The credential %(cuenta)s of %(lugar)s expires on %(fecha)s (%(cuando)s).")
            % {"cuenta": cuenta, "lugar": lugar, "fecha": vence, "cuando": cuando},
            _("Change it before then and record the new secret in the vault."),
            enlace,
        ]
    )
    return asunto, texto + "\n"


def credenciales_avisar_vencimientos(*, hoy: date | None = None) -> int:
    """Write the reminders that are due today (site time zone); returns how many credentials
    got one. Each credential's rows are written in a transaction of their own."""
    dias = sorted(settings.CREDENCIALES_AVISO_DIAS)
    if not dias:
        return 0
    hoy = hoy or timezone.localdate()
    credenciales = list(
        Credencial.objects.filter(vence__gte=hoy, vence__lte=hoy + timedelta(days=dias[-1]))
        .select_related("tipo", "departamento", "unidad", "creado_por")
        .defer("clave")
        .order_by("vence", "pk")
    )
    jefes: dict[int, list[Usuario]] = {}
    for jefe in Usuario.objects.filter(
        departamento_id__in={c.departamento_id for c in credenciales}, jefe=True, is_active=True
    ).order_by("pk"):
        jefes.setdefault(jefe.departamento_id, []).append(jefe)
    avisadas = 0
    with translation.override(settings.LANGUAGE_CODE):
        for credencial in credenciales:
            quedan = (credencial.vence - hoy).days
            dias_umbral = umbral(quedan, dias)
            if dias_umbral is None:
                continue
            usuarios = list(jefes.get(credencial.departamento_id, []))
            creador = credencial.creado_por
            if (
                creador is not None
                and creador.is_active
                and creador.departamento_id == credencial.departamento_id
            ):
                usuarios.append(creador)
            asunto, texto = _mensaje(credencial, quedan)
            with transaction.atomic():
                filas = avisos.avisar(
                    usuarios=usuarios,
                    asunto=asunto,
                    texto=texto,
                    datos={
                        "tipo": "credencial_vence",
                        "credencial": credencial.pk,
                        "vence": credencial.vence.isoformat(),
                        "dias": dias_umbral,
                    },
                    unico=clave_unica(credencial, dias_umbral),
                )
            avisadas += bool(filas)
    return avisadas
