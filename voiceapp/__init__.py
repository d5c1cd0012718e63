"""Voiceapp Django project. The Celery app is imported so that ``shared_task`` binds to it."""

from voiceapp.celery import app as celery_app

__all__ = ["celery_app"]
