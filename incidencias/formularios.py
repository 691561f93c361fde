"""How form widgets are drawn: by Jinja2 where it can, by Django's templates otherwise.

Django ships every built-in widget's template for both engines. Drawn by the template language,
a `<input>` costs two template renders (the widget and its attributes), some half a
millisecond each on a page with a dozen fields; Jinja2 compiles the same templates to Python and
draws them several times faster. A template Jinja2 does not have (Django admin's own widgets)
is drawn by Django's engine, as before. Pages stay Django templates: only `{{ field }}` changes
hands. Settings: FORM_RENDERER = "incidencias.formularios.Formularios".
"""

from django.forms import renderers
from django.template import TemplateDoesNotExist


class Formularios(renderers.BaseRenderer):
    def __init__(self):
        self.jinja2 = renderers.Jinja2()
        self.django = renderers.DjangoTemplates()

    def get_template(self, template_name):
        try:
            return self.jinja2.get_template(template_name)
        except TemplateDoesNotExist:
            return self.django.get_template(template_name)
