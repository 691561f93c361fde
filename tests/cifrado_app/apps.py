from django.apps import AppConfig


class CifradoAppConfig(AppConfig):
    name = "tests.cifrado_app"
    label = "cifrado_app"
