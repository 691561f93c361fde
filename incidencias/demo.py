"""The demo organisation of `manage.py demo`: the ticket part. Idempotent."""

from sso.models import Departamento

from .models import Asignacion, Calendario, ColaDepartamento, CuentaCorreo, PoliticaSLA, Prioridad

HORARIO = {str(day): [["08:00", "17:00"]] for day in range(5)}  # Monday to Friday
# priority -> (first response, resolution), in business minutes
OBJETIVOS = {
    Prioridad.URGENTE: (30, 240),
    Prioridad.ALTA: (60, 480),
    Prioridad.NORMAL: (240, 1440),
    Prioridad.BAJA: (480, 2880),
}


def demo_incidencias() -> None:
    calendario, _ = Calendario.objects.get_or_create(
        nombre="Oficina Costa Rica",
        defaults={"zona_horaria": "America/Costa_Rica", "horario": HORARIO},
    )
    for departamento in Departamento.objects.all():
        ColaDepartamento.objects.get_or_create(
            departamento=departamento, defaults={"asignacion": Asignacion.ROUND_ROBIN}
        )
        for prioridad, (primera, resolucion) in OBJETIVOS.items():
            PoliticaSLA.objects.get_or_create(
                departamento=departamento,
                prioridad=prioridad,
                defaults={
                    "primera_respuesta_min": primera,
                    "resolucion_min": resolucion,
                    "calendario": calendario,
                },
            )
    soporte = Departamento.objects.filter(nombre="Soporte").first()
    if not CuentaCorreo.objects.filter(user="soporte@example.com").exists():
        CuentaCorreo.objects.create(
            host="127.0.0.1",
            port=143,
            seguridad=CuentaCorreo.Seguridad.NINGUNA,
            user="soporte@example.com",
            password="demo-buzon-2026",  # noqa: S106 - demo mailbox on loopback
            mail_boxes=["INBOX"],
            departamento=soporte,
            estado=CuentaCorreo.Estado.INACTIVO,  # no server behind it until one is configured
        )
