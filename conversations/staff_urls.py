"""Staff-only pages beside the admin, under ``/admin/voiceapp/``."""

from django.urls import path

from conversations import kpi_views, review_views

urlpatterns: list = []
urlpatterns += [
    path(
        "sessions/<int:session_id>/review/",
        review_views.session_review,
        name="voiceapp_session_review",
    ),
    path("turn-audio/<int:audio_id>/", review_views.turn_audio, name="voiceapp_turn_audio"),
]
urlpatterns += [path("kpis/", kpi_views.kpi_dashboard, name="voiceapp_kpi_dashboard")]
