"""Staff-only pages beside the admin, under ``/admin/voiceapp/``."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
