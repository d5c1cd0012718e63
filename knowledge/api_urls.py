"""REST routes of the knowledge base (PROTOCOL.md: /api/knowledge/...)."""

urlpatterns: list = []
