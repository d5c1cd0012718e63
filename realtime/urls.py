"""Routes of the voice page (``/voice/``); the WebSocket's are in ``realtime.routing``."""

from django.contrib.auth import views as auth_views
from django.urls import path

from realtime import views

urlpatterns = [
    path("", views.voice_page, name="voice_page"),
    path("token/", views.voice_token, name="voice_token"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="voice/login.html", redirect_authenticated_user=True
        ),
        name="voice_login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="voice_login"), name="voice_logout"),
]
