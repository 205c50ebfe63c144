"""vector-operator: manage Milvus vector collections, embedding migrations and rollbacks from Kubernetes."""

__version__ = "0.1.0"

DEFAULT_WORKER_IMAGE = f"ghcr.io/vectors-aios/vector-operator:{__version__}"
"""The image of the embedding Jobs unless the installation names another (--worker-image)."""
