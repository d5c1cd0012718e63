"""Retained audio files follow their rows: a deleted ``TurnAudio`` takes its file along.

A receiver rather than code in each service, because rows also vanish by cascade (the
admin's stock "delete selected sessions", deleting a user account) and none of those
paths may leave a recording behind. The file goes only once the deleting transaction has
committed, so a rolled-back deletion never leaves a row pointing at a missing file.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.storage import Storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from conversations.models import TurnAudio

logger = logging.getLogger(__name__)


def file_delete_on_commit(storage: Storage, name: str) -> None:
    """Remove ``name`` from ``storage`` after the current transaction commits."""

    def _delete() -> None:
        try:
            storage.delete(name)
        except OSError:
            # The row is gone either way; a file left behind must be visible in the logs.
            logger.exception("could not delete retained audio file %s", name)

    transaction.on_commit(_delete)


@receiver(post_delete, sender=TurnAudio, dispatch_uid="turn_audio_file_delete")
def _turn_audio_file_delete(sender: type[TurnAudio], instance: TurnAudio, **_: Any) -> None:
    if instance.file.name:
        file_delete_on_commit(instance.file.storage, instance.file.name)
