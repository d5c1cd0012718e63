"""Periodic housekeeping: thin tasks that call a service (run hourly by Celery beat)."""

from __future__ import annotations

from celery import shared_task

from conversations.retention import audio_purge_expired


@shared_task(
    name="conversations.tasks.audio_purge_task",
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def audio_purge_task() -> int:
    """Idempotent: a late or repeated run finds nothing more to delete."""
    return audio_purge_expired()
