"""Rate-limit policies: the stored default and the limits that apply to a user."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from conversations.models import RateLimitPolicy


@transaction.atomic
def ratelimit_default_ensure() -> RateLimitPolicy:
    """Return the default policy row, creating it from ``RATE_LIMIT_DEFAULTS`` if missing.

    An existing row is never overwritten: settings only seed it, and staff edit it in the
    admin afterwards.
    """
    policy, _created = RateLimitPolicy.objects.get_or_create(
        user=None, defaults=dict(settings.RATE_LIMIT_DEFAULTS)
    )
    return policy
