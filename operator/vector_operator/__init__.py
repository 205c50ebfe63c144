"""vector-operator: manage Milvus vector collections, embedding migrations and rollbacks from Kubernetes."""

__version__ = "0.1.0"
