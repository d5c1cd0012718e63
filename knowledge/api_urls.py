"""REST routes of the knowledge base (PROTOCOL.md: /api/knowledge/...)."""

from django.urls import path

from knowledge.api import DocumentDetailApi, DocumentListApi, KnowledgeSearchApi

urlpatterns: list = [
    path("documents/", DocumentListApi.as_view(), name="api_knowledge_documents"),
    path(
        "documents/<int:document_id>/",
        DocumentDetailApi.as_view(),
        name="api_knowledge_document",
    ),
    path("search/", KnowledgeSearchApi.as_view(), name="api_knowledge_search"),
]
