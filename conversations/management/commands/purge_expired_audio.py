"""``manage.py purge_expired_audio``: delete retained audio past its expiry, now.

Celery beat runs the same service hourly; this is for the embedded default (no beat:
run it from cron) and for an operator who shortened the retention period.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from conversations.retention import audio_purge_expired


class Command(BaseCommand):
    help = "Delete retained turn audio (rows and files) whose retention period has ended."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = audio_purge_expired()
        self.stdout.write(f"Deleted {deleted} expired audio file(s).")
