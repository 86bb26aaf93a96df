"""WSGI entry point (gunicorn sv_sdk.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sv_sdk.settings.base")
application = get_wsgi_application()
