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


# (requester, subject, body, replies from the requester)
CORREOS = (
    (
        "Lucía Vargas <lucia.vargas@example.net>",
        "No puedo enviar correo desde Outlook",
        "Desde esta mañana Outlook me pide la contraseña una y otra vez y no envía nada.\n"
        "Recibir sí funciona.",
        1,
    ),
    (
        "Servidores Montaña <ti@montana.example.org>",
        "Caída del servidor VPS-204",
        "El VPS-204 no responde a ping desde las 07:40. Es nuestro servidor de facturación.",
        0,
    ),
    (
        "Andrés Quesada <andres@quesada.example.com>",
        "Renovación del dominio quesada.example.com",
        "Quisiera renovar el dominio por dos años más. ¿Me envían la factura?",
        0,
    ),
    (
        "Marta Solís <msolis@example.net>",
        "La página web carga muy lento",
        "Nuestra tienda en línea tarda más de 10 segundos en cargar desde ayer.",
        2,
    ),
    (
        "Colegio San José <soporte@colegio.example.edu>",
        "Cambio de contraseña del panel",
        "Perdimos la contraseña del panel de hosting. ¿Cómo la recuperamos?",
        0,
    ),
    (
        "Jorge Brenes <jbrenes@example.com>",
        "Factura duplicada de noviembre",
        "Me llegaron dos cobros por el mismo servicio este mes.",
        0,
    ),
    (
        "Ferretería El Clavo <ventas@elclavo.example.com>",
        "Certificado SSL vencido",
        "El navegador dice que el certificado de nuestra página venció.",
        1,
    ),
    (
        "Ana Jiménez <ana.jimenez@example.org>",
        "Buzón lleno",
        "Me aparece que el buzón está lleno, pero borré muchos correos.",
        0,
    ),
)


def _mensaje(numero, remitente, asunto, cuerpo, *, responde_a=None):
    from email.message import EmailMessage
    from email.utils import format_datetime

    from django.utils import timezone

    mensaje = EmailMessage()
    mensaje["From"] = remitente
    mensaje["To"] = "soporte@example.com"
    mensaje["Subject"] = f"Re: {asunto}" if responde_a else asunto
    mensaje["Message-ID"] = f"<demo-{numero}@demo.example.com>"
    mensaje["Date"] = format_datetime(timezone.now())
    if responde_a:
        mensaje["In-Reply-To"] = responde_a
        mensaje["References"] = responde_a
    mensaje.set_content(cuerpo)
    return mensaje.as_bytes()


def demo_tickets() -> None:
    """A few customer mails through the mail pipeline (the same path as IMAP), with replies
    threaded onto their tickets. Their Message-IDs are fixed, so a second run stores nothing."""
    from .ingest import ingest_lote

    cuenta = CuentaCorreo.objects.filter(user="soporte@example.com").first()
    if cuenta is None:
        return
    crudos = []
    respuestas = []
    for indice, (remitente, asunto, cuerpo, replicas) in enumerate(CORREOS):
        crudos.append(_mensaje(indice, remitente, asunto, cuerpo))
        for replica in range(replicas):
            respuestas.append(
                _mensaje(
                    f"{indice}-{replica}",
                    remitente,
                    asunto,
                    "¿Alguna novedad? Sigue igual." if replica == 0 else "Gracias, quedo atento.",
                    responde_a=f"<demo-{indice}@demo.example.com>",
                )
            )
    ingest_lote(crudos, cuenta=cuenta, fuente="demo")
    ingest_lote(respuestas, cuenta=cuenta, fuente="demo")
