from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "djangoproject.shop"

    def ready(self):
        # Registers the functions hubbub's hooks call (@rpc, @on_subscribe, ...).
        from djangoproject.shop import hooks  # noqa: F401
