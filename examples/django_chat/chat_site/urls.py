from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # What hubbub asks (hubbub.toml's [hooks]): hubbub/connect, hubbub/subscribe, hubbub/rpc.
    path("hubbub/", include("hubbub.django.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("chat.urls")),
]
