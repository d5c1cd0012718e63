"""Embedders: text → L2-normalised float32 vectors, one interface, one module per vendor."""
