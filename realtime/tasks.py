"""Celery tasks of the voice pipeline: thin, idempotent, ids in.

The utterance audio is read from the turn store, never passed as an argument; a
duplicate delivery finds the turn no longer queued and returns at once.
"""

from __future__ import annotations

import logging
from concurrent.futures import CancelledError

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from django.conf import settings

from realtime import loop
from realtime.pipeline import turn_run

logger = logging.getLogger(__name__)


@shared_task(name="realtime.turn_run", ignore_result=True)
def turn_run_task(turn_id: int, reply_channel: str, enqueued_at: float | None = None) -> None:
    """``enqueued_at`` (wall clock) only measures how long the turn waited in the queue."""
    future = loop.submit(
        turn_run(turn_id=turn_id, reply_channel=reply_channel, enqueued_at=enqueued_at)
    )
    try:
        future.result()
    except CancelledError:
        # The loop the turn ran on shut down (server stop); the consumer is gone too.
        logger.info("turn %s was cancelled with its event loop", turn_id)
    except SoftTimeLimitExceeded:
        # Cancelling the coroutine stores the turn as failed with ``timeout`` and tells
        # the consumer; wait briefly for that bookkeeping before the hard limit.
        future.cancel()
        logger.warning("turn %s hit the soft time limit", turn_id)


@worker_process_init.connect
def _warm_up_models(**_: object) -> None:
    """Load the models once per worker process, before the first turn arrives."""
    if settings.VOICE.get("PRELOAD", True):
        from realtime.providers.registry import warm_up_turn_path

        warm_up_turn_path()
