"""Settings of the test project. The hub's URL is set by the tests (override_settings)."""

import atexit
import shutil
import tempfile
from pathlib import Path

_data = Path(tempfile.mkdtemp(prefix="hubbub-django-"))
atexit.register(shutil.rmtree, _data, ignore_errors=True)

SECRET_KEY = "hubbub-test-project"
DEBUG = False
# testserver: Django's test client; 127.0.0.1: the project served to a real hub (hooks).
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "djangoproject.shop",  # its AppConfig registers the hook functions (shop/hooks.py)
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # the hook receivers are exempt
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "djangoproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,  # shop/templates
    }
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_data / "db.sqlite3")}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LOGIN_URL = "/login/"

HUBBUB = {
    "URL": "http://127.0.0.1:9772",
    "TOKEN_SECRET": "change me",
    "PERMISSIONS": "djangoproject.permissions.for_user",
    "HOOK_SECRET": "change me too",
}
