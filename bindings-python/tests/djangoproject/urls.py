from django.urls import include, path

from djangoproject.shop import views

urlpatterns = [
    path("orders/", views.create_order),
    path("hubbub/token/", views.hubbub_token),
    path("announce/", views.announce),
    path("board/", views.board),
    path("board/position/", views.board_position),
    path("hubbub/", include("hubbub.django.urls")),
]
