"""``GET /healthz``: is the database, the channel layer and a task worker reachable?

A sync view on purpose: under ASGI Django runs it in a worker thread, so the blocking
probes (a SQL round trip, a Celery ping that waits up to a second) never stall the event
loop. Every probe catches its own failure and reports it as ``ok: false``; the view never
raises, and answers 503 when anything is degraded so load balancers can act on it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import re
import secrets
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from voiceapp.celery import app as celery_app
from voiceapp.logging import redact

logger = logging.getLogger(__name__)

CHANNEL_LAYER_TIMEOUT_S = 2.0
WORKER_PING_TIMEOUT_S = 1.0
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")

Probe = dict[str, Any]


def _clean_error(err: BaseException) -> str:
    """A short error text with credentials in URLs and tokens removed."""
    text = str(err) or "no details"
    if isinstance(err, TimeoutError):
        text = "timed out"
    text = redact(_URL_CREDENTIALS.sub(r"\1***@", f"{type(err).__name__}: {text}"))
    return text[:300]


def _timed(name: str, probe: Callable[[], Probe]) -> Probe:
    start = time.perf_counter()
    try:
        result = probe()
    except Exception as err:
        logger.warning("health probe %s failed", name, exc_info=True)
        result = {"ok": False, "error": _clean_error(err)}
    result["ms"] = round((time.perf_counter() - start) * 1000, 2)
    return result


def _database() -> Probe:
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "engine": connection.vendor}


async def _layer_round_trip(layer: Any) -> None:
    # A plain channel name: the process-local "!" channels share asyncio state with the
    # consumers of this process, which a probe on another loop must not touch.
    channel = f"healthz.{secrets.token_hex(8)}"
    nonce = secrets.token_hex(8)
    try:
        await layer.send(channel, {"type": "healthz.ping", "nonce": nonce})
        message = await layer.receive(channel)
    finally:
        close = getattr(layer, "close_pools", None)
        if close is not None:
            await close()
    if message.get("nonce") != nonce:
        raise RuntimeError("channel layer returned a different message")


def _channel_layer() -> Probe:
    # A layer instance of its own, on a loop of its own: the server's instance (and
    # its connections bound to the server's loop) stays untouched.
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)

    async def bounded() -> None:
        await asyncio.wait_for(_layer_round_trip(layer), CHANNEL_LAYER_TIMEOUT_S)

    asyncio.run(bounded())
    return {"ok": True}


def _workers() -> Probe:
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return {"ok": True, "mode": "in-process", "count": 1}
    replies = celery_app.control.ping(timeout=WORKER_PING_TIMEOUT_S) or []
    probe: Probe = {"ok": bool(replies), "mode": "celery", "count": len(replies)}
    if not replies:
        probe["error"] = f"no worker answered within {WORKER_PING_TIMEOUT_S} s"
    return probe


@cache
def _version() -> str:
    try:
        return importlib.metadata.version("voiceapp")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    layers = getattr(settings, "CHANNEL_LAYERS", {})
    backend = layers.get("default", {}).get("BACKEND", "")
    # The Celery ping waits its whole timeout; run it beside the other probes. The
    # database probe stays on this thread, which owns (and later closes) the connection.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthz") as pool:
        workers_future = pool.submit(_timed, "workers", _workers)
        database = {**_timed("database", _database)}
        database.setdefault("engine", connections["default"].vendor)
        channel_layer = {"backend": backend, **_timed("channel_layer", _channel_layer)}
        workers = workers_future.result()
    workers.setdefault("mode", "celery")
    workers.setdefault("count", 0)
    healthy = database["ok"] and channel_layer["ok"] and workers["ok"]
    body = {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "channel_layer": channel_layer,
        "workers": workers,
        "version": _version(),
    }
    return JsonResponse(body, status=200 if healthy else 503)
