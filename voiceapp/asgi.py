"""ASGI entry point: HTTP through Django, WebSockets through the voice consumer.

WebSockets authenticate with a JWT (query or first message, see realtime.consumers);
a browser's ``Origin`` must name one of ``ALLOWED_HOSTS`` so that another site's page
cannot open a voice session. Clients that send no ``Origin`` (the command-line client,
servers) are allowed: they carry no ambient credentials.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from realtime.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application):  # type: ignore[no-untyped-def]
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin):  # type: ignore[no-untyped-def]
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
