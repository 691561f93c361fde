"""The project's URLs plus the baseline views; never part of the production URLconf."""

from django.urls import path

from incidencias import urls as project_urls

from .baseline import BaselineUsuarioInternoView
from .baseline_auth import BaselineUsuarioView
from .baseline_sso import BaselineRefreshUserTokenView
from .baseline_vault import BaselineRevelarView

# Appended last, so the baselines pay for resolving past every project pattern.
urlpatterns = [
    *project_urls.urlpatterns,
    path("bench/baseline", BaselineUsuarioInternoView.as_view(), name="bench-baseline"),
    path(
        "bench/baseline-refresh",
        BaselineRefreshUserTokenView.as_view(),
        name="bench-baseline-refresh",
    ),
    path("bench/baseline-user", BaselineUsuarioView.as_view(), name="bench-baseline-user"),
    path(
        "bench/baseline-revelar/<int:id>",
        BaselineRevelarView.as_view(),
        name="bench-baseline-revelar",
    ),
]

handler404 = project_urls.handler404
handler500 = project_urls.handler500
