from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self):
        # The hook functions register themselves when their module is imported.
        from . import hubbub_hooks  # noqa: F401
