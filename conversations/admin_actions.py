"""Admin action: delete users' conversations and audio, after a confirmation page.

Used on the session list (the owners of the selected sessions) and the user list (the
selected users). It deletes more than the selected rows, so it always shows what will go
first, like the admin's own "delete selected", and deletes only on the confirming POST.
"""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from conversations.retention import COUNT_KEYS, user_data_counts, user_data_delete

logger = logging.getLogger(__name__)

DESCRIPTION = "Delete conversations and audio of the selected users' sessions"
DELETE_PERMISSION = "conversations.delete_voicesession"


def users_data_delete_confirm(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    selected: QuerySet,
    users: QuerySet[AbstractBaseUser],
    action: str,
) -> TemplateResponse | None:
    """The confirmation page on the first POST; the deletion on the confirming one."""
    if request.POST.get("post") == "yes":
        totals = dict.fromkeys(COUNT_KEYS, 0)
        for user in users:
            for key, value in user_data_delete(user=user).items():
                totals[key] += value
        logger.info(
            "staff %s deleted the conversations of users %s",
            request.user.pk,
            [user.pk for user in users],
        )
        modeladmin.message_user(
            request,
            f"Deleted {totals['sessions']} session(s), {totals['turns']} turn(s) and "
            f"{totals['audio_files']} audio file(s) of {len(users)} user(s).",
            messages.SUCCESS,
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Delete conversations and audio?",
        "rows": [(user, user_data_counts(user=user)) for user in users],
        "selected": selected,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/voiceapp/confirm_user_data_delete.html", context)


@admin.action(description=DESCRIPTION, permissions=["delete"])
def delete_session_users_data(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> TemplateResponse | None:
    """On the session list: every conversation of each selected session's owner."""
    users = get_user_model().objects.filter(pk__in=queryset.values("user_id")).order_by("pk")
    return users_data_delete_confirm(
        modeladmin, request, queryset, users, "delete_session_users_data"
    )


@admin.action(
    description="Delete conversations and audio of the selected users",
    permissions=["voice_data_delete"],
)
def delete_users_data(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> TemplateResponse | None:
    """On the user list: the accounts stay, their conversations and audio go."""
    return users_data_delete_confirm(
        modeladmin, request, queryset, queryset.order_by("pk"), "delete_users_data"
    )
