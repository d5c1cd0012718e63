"""REST API routes under ``/api/`` (PROTOCOL.md "HTTP endpoints")."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from conversations.api import PreferencesApi, SessionDetailApi, SessionListApi, VoiceTurnApi
from conversations.kpi_api import KpiView

urlpatterns: list = [
    path("voice/turns/", VoiceTurnApi.as_view(), name="api_voice_turns"),
    path("voice/preferences/", PreferencesApi.as_view(), name="api_voice_preferences"),
    path("sessions/", SessionListApi.as_view(), name="api_sessions"),
    path("sessions/<int:session_id>/", SessionDetailApi.as_view(), name="api_session"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
]
urlpatterns += [path("kpis/", KpiView.as_view(), name="api_kpis")]
