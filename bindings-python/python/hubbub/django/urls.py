"""The hook receivers' URLs: ``path("hubbub/", include("hubbub.django.urls"))`` serves
``hubbub/connect``, ``hubbub/subscribe``, ``hubbub/rpc`` and ``hubbub/events`` (a trailing
slash is accepted too), the URLs the hub's ``[hooks]`` table names. Reversed as
``hubbub:connect`` and so on."""

from django.urls import re_path

from hubbub.django.hooks import receive_connect, receive_events, receive_rpc, receive_subscribe

app_name = "hubbub"

urlpatterns = [
    re_path(r"^connect/?$", receive_connect, name="connect"),
    re_path(r"^subscribe/?$", receive_subscribe, name="subscribe"),
    re_path(r"^rpc/?$", receive_rpc, name="rpc"),
    re_path(r"^events/?$", receive_events, name="events"),
]
