"""What every REST view of the project shares: the upload size guard and pagination.

Both turn DRF's and Django's own exceptions into the project's coded errors, so an
oversize body is ``413 too_large`` before it is read and a bad page number is
``400 bad_message``, never a 404 or a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from voiceapp.errors import BadRequest, TooLarge

#: Room for a form's other fields and the multipart boundaries beside the file.
FORM_OVERHEAD_BYTES = 64 * 1024


def request_data_within(request: Request, *, limit_bytes: int, too_large: str) -> Any:
    """``request.data``, refusing a body over ``limit_bytes`` (plus form overhead) unread.

    ``too_large`` is the message when Django's own in-memory limit stops a body whose
    length was not announced.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit_bytes + FORM_OVERHEAD_BYTES:
        raise TooLarge(f"the upload may be at most {limit_bytes} bytes")
    try:
        return request.data
    except RequestDataTooBig as err:
        raise TooLarge(too_large) from err
    except (TooManyFieldsSent, TooManyFilesSent) as err:
        raise BadRequest("the form has too many fields") from err


class PagePagination(PageNumberPagination):
    """20 a page; an invalid page is the client's mistake (400), not a missing row (404)."""

    page_size = 20

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as err:
            raise BadRequest(f"invalid page: {err.detail}") from err
