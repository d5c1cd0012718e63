from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Deleting a TurnAudio row (directly or by cascade) removes its file too.
        from conversations import signals  # noqa: F401
