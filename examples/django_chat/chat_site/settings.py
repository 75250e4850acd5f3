"""Settings of the chat example.

Development values throughout. The two secrets the app shares with hubbub (the API key
Django publishes with, and the secret that signs the hub's hook requests) are read from the
same environment variables hubbub reads, so that one `export` sets both sides; their
defaults match `hubbub.toml` beside this project.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BASE_DIR.parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-chat-example-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chat_site.urls"
WSGI_APPLICATION = "chat_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DATABASE", BASE_DIR / "db.sqlite3"),
    }
}

AUTH_PASSWORD_VALIDATORS = []  # the demo users have passwords like "guest"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"

# The browser client, the npm package `hubbub-client`, is served as plain static files and
# imported by a <script type="module"> through an import map: no bundler. In a project of
# your own, install it from your hubbub checkout
# (`npm install /path/to/hubbub/bindings-wasm/pkg`, docs/django.md) and point this at
# node_modules/hubbub-client. This example takes CHAT_HUBBUB_CLIENT_DIR where it is set,
# else its own node_modules/hubbub-client where there is one, else the package as built in
# this repository (bindings-wasm/pkg).
HUBBUB_CLIENT_DIR = Path(
    os.environ.get("CHAT_HUBBUB_CLIENT_DIR")
    or (
        BASE_DIR / "node_modules" / "hubbub-client"
        if (BASE_DIR / "node_modules" / "hubbub-client").is_dir()
        else REPO_DIR / "bindings-wasm" / "pkg"
    )
)
STATICFILES_DIRS = [("hubbub-client", HUBBUB_CLIENT_DIR)]

# hubbub: where the hub's HTTP API is and the key to call it with; the secret that signs
# the hub's hook requests to hubbub/connect, subscribe and rpc (chat_site/urls.py), the
# hub's [hooks] secret; and which channels each user's connection may read and write.
HUBBUB_URL = os.environ.get("CHAT_HUBBUB_URL", "http://127.0.0.1:9772")
HUBBUB = {
    "URL": HUBBUB_URL,
    "API_KEY": os.environ.get("HUBBUB_API_KEYS", "chat-example-api-key").split(",")[0],
    "HOOK_SECRET": os.environ.get("HUBBUB_HOOKS_SECRET", "chat-example-hook-secret"),
    "PERMISSIONS": "chat.permissions.channel_permissions",
}

# Where browsers open their WebSocket: the hub's own address, not Django's. The browser
# sends the hub the cookies of this URL's host (cookies belong to a host name, whatever the
# port), so the session cookie reaches the hub when the page is on the same host name: the
# page at http://127.0.0.1:8000/ and the hub at ws://127.0.0.1:9772/ws, not the page at
# http://localhost:8000/.
HUBBUB_WEBSOCKET_URL = os.environ.get(
    "CHAT_HUBBUB_WEBSOCKET_URL",
    HUBBUB_URL.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/") + "/ws",
)
