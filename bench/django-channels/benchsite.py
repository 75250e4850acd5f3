"""The Django Channels target of hubbub-bench: a minimal project, as a Django developer would
write it instead of running hubbub.

- ``/ws``: a WebSocket consumer. ``{"subscribe": "c"}`` joins group ``c`` of the channel
  layer and answers ``{"subscribed": "c"}``; every group message is sent on as it is.
- ``POST /publish?channel=c``: ``group_send`` of the request body to group ``c``.

The channel layer is ``channels_redis`` on the Redis at ``BENCH_REDIS_URL``; run with
``daphne benchsite:application`` and ``DJANGO_SETTINGS_MODULE=benchsite``.
"""

import json
import os

SECRET_KEY = "hubbub-bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
ROOT_URLCONF = "benchsite"
USE_TZ = True
ASGI_APPLICATION = "benchsite.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")]},
    }
}

import django  # noqa: E402  (settings above must exist first)

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpResponse, HttpResponseBadRequest  # noqa: E402
from django.urls import path  # noqa: E402


class Subscriber(AsyncWebsocketConsumer):
    async def connect(self):
        self.joined = []
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        channel = json.loads(text_data)["subscribe"]
        await self.channel_layer.group_add(channel, self.channel_name)
        self.joined.append(channel)
        await self.send(text_data=json.dumps({"subscribed": channel}))

    async def disconnect(self, code):
        for channel in self.joined:
            await self.channel_layer.group_discard(channel, self.channel_name)

    async def bench_message(self, event):
        await self.send(text_data=event["text"])


async def publish(request):
    channel = request.GET.get("channel")
    if request.method != "POST" or not channel:
        return HttpResponseBadRequest("POST /publish?channel=NAME")
    await get_channel_layer().group_send(
        channel, {"type": "bench.message", "text": request.body.decode()}
    )
    return HttpResponse(status=204)


urlpatterns = [path("publish", publish)]

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter([path("ws", Subscriber.as_asgi())]),
    }
)
