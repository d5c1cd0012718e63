from django.urls import path

from realtime.consumers import VoiceConsumer

websocket_urlpatterns = [
    path("ws/voice/", VoiceConsumer.as_asgi()),
]
