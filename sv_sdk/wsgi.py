"""WSGI entry point (gunicorn sv_sdk.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sv_sdk.settings.base")
application = get_wsgi_application()

# After setup: a worker without collected static files stops here, saying so,
# instead of answering every admin page with a bare 500.
from sv_sdk.checks import require_collected_static  # noqa: E402

require_collected_static()
