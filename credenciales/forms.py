"""Forms of the vault's staff pages. The secret is write-only: the edit form never renders it,
and an empty field keeps the current one."""

from django import forms
from django.utils.translation import gettext_lazy as _

from sso.models import Departamento, Unidad

from . import selectors
from .models import MiembroUnidad, TipoCredencial


def departamentos_gestionables(usuario):
    """The departments where the user may file a credential: every one for staff who see all,
    else their own."""
    qs = Departamento.objects.order_by("nombre")
    if selectors.puede_ver_todas(usuario):
        return qs
    return qs.filter(pk=usuario.departamento_id)


def unidades_gestionables(usuario):
    """The units the user may file a credential under (the same rule as seeing them)."""
    qs = Unidad.objects.select_related("departamento").order_by("departamento__nombre", "nombre")
    if selectors.puede_ver_todas(usuario):
        return qs
    qs = qs.filter(departamento_id=usuario.departamento_id)
    if usuario.jefe:
        return qs
    return qs.filter(pk__in=MiembroUnidad.objects.filter(usuario=usuario).values("unidad_id"))


class UnidadChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.departamento.nombre} - {obj.nombre}"


class FiltroForm(forms.Form):
    """The list's filters; an invalid value is ignored rather than an error page."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200)
    tipo = forms.ModelChoiceField(
        label=_("Type"), queryset=TipoCredencial.objects.all(), required=False, empty_label=_("All")
    )
    departamento = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Departamento.objects.none(),
        required=False,
        empty_label=_("All"),
    )
    unidad = UnidadChoiceField(
        label=_("Unit"), queryset=Unidad.objects.none(), required=False, empty_label=_("All")
    )

    def __init__(self, *args, usuario, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs["placeholder"] = _("Account or note")
        self.fields["departamento"].queryset = departamentos_gestionables(usuario)
        self.fields["unidad"].queryset = unidades_gestionables(usuario)

    def filtros(self) -> dict:
        if not self.is_valid():
            return {}
        datos = self.cleaned_data
        return {
            "texto": datos["q"].strip(),
            "tipo_id": datos["tipo"].pk if datos["tipo"] else None,
            "departamento_id": datos["departamento"].pk if datos["departamento"] else None,
            "unidad_id": datos["unidad"].pk if datos["unidad"] else None,
        }


class CredencialForm(forms.Form):
    tipo = forms.ModelChoiceField(label=_("Type"), queryset=TipoCredencial.objects.all())
    departamento = forms.ModelChoiceField(
        label=_("Department"), queryset=Departamento.objects.none()
    )
    unidad = UnidadChoiceField(
        label=_("Unit"),
        queryset=Unidad.objects.none(),
        required=False,
        empty_label=_("(the whole department)"),
    )
    usuario = forms.CharField(label=_("Account"), max_length=255)
    clave = forms.CharField(
        label=_("Secret"),
        required=False,
        strip=False,
        max_length=4000,
        widget=forms.PasswordInput(
            render_value=False,
            attrs={"autocomplete": "new-password", "data-clave": "", "spellcheck": "false"},
        ),
    )
    url = forms.URLField(label=_("URL"), required=False, max_length=500, assume_scheme="https")
    vence = forms.DateField(
        label=_("Expires"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    nota = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, usuario, nueva: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.nueva = nueva
        self.fields["departamento"].queryset = departamentos_gestionables(usuario)
        self.fields["unidad"].queryset = unidades_gestionables(usuario)
        if nueva:
            self.fields["clave"].required = True
        else:
            self.fields["clave"].help_text = _(
                "Write-only: leave it empty to keep the current secret."
            )

    def clean(self):
        datos = super().clean()
        departamento, unidad = datos.get("departamento"), datos.get("unidad")
        if departamento and unidad and unidad.departamento_id != departamento.pk:
            self.add_error("unidad", _("That unit belongs to another department."))
        return datos

    def campos(self) -> dict:
        """The service's arguments (without the secret)."""
        datos = self.cleaned_data
        return {campo: datos[campo] for campo in ("tipo", "departamento", "unidad", "usuario")} | {
            "url": datos["url"],
            "vence": datos["vence"],
            "nota": datos["nota"],
        }


class RevelarForm(forms.Form):
    motivo = forms.CharField(label=_("Reason"), required=False, max_length=500)


def personas_visibles(usuario):
    """The people a department head (or staff who see every department) may report on or
    filter the audit log by: their department's, or everyone's; those who left included."""
    from sso.models import Usuario

    qs = Usuario.objects.order_by("first_name", "last_name", "username")
    if selectors.puede_ver_todas(usuario):
        return qs
    return qs.filter(departamento_id=usuario.departamento_id)


class PersonaChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        nombre = obj.get_full_name() or obj.get_username()
        return nombre if obj.is_active else _("%(nombre)s (inactive)") % {"nombre": nombre}


class ExportarForm(forms.Form):
    """The audit log export's filters (a credential comes from its own audit log page)."""

    credencial = forms.IntegerField(required=False, widget=forms.HiddenInput)
    persona = PersonaChoiceField(
        label=_("Person"), queryset=None, required=False, empty_label=_("Everyone")
    )
    desde = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    hasta = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, usuario, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["persona"].queryset = personas_visibles(usuario)

    def clean(self):
        datos = super().clean()
        desde, hasta = datos.get("desde"), datos.get("hasta")
        if desde and hasta and desde > hasta:
            self.add_error("hasta", _("The end is before the start."))
        return datos


class InformeForm(forms.Form):
    usuario = PersonaChoiceField(label=_("Person"), queryset=None)

    def __init__(self, *args, por, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["usuario"].queryset = personas_visibles(por)
