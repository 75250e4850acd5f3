from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("rooms/<int:room_id>/messages", views.send, name="send"),
]
