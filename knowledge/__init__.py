"""Knowledge base: documents, chunks, embeddings and the retrieval backends (issue 5)."""
