"""Adapters to Milvus: connections and the collection operations the operator performs."""
