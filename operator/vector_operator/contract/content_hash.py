"""The content hash of an embedded record: the text the model read and the model settings that
shape its vector, in one signed 64-bit integer stored beside the vector (field ``content_hash``).
A sync compares it with the hash of the row as it is now: equal means the stored vector is still
the one the model would produce, so it is reused instead of embedded again.

Device and backend are left out on purpose: they do not change the vector space."""

from __future__ import annotations

import hashlib
import json

from vector_operator.api.vectorcollection import CONTENT_HASH_FIELD, EmbeddingSpec

__all__ = ["CONTENT_HASH_FIELD", "content_hash", "model_fingerprint"]


def model_fingerprint(model: EmbeddingSpec) -> bytes:
    """What of the model's settings changes the vectors, as bytes to hash."""
    settings = [model.model, model.normalize, model.truncate_dim, model.max_seq_length]
    return json.dumps(settings, separators=(",", ":")).encode()


def content_hash(text: str, fingerprint: bytes) -> int:
    """The hash of ``text`` (as the model reads it) under the model ``fingerprint``."""
    digest = hashlib.blake2b(fingerprint + b"\0" + text.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)
