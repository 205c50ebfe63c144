"""Decisions about a VectorCollection's Milvus side: names, layout, and what to change."""
