"""Secrets never leave the worker: every log line and the result's texts pass through a
:class:`Redactor` that knows the secret values the worker read (and their password parts)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from vector_operator.contract.assignment import WorkerAssignment

MASK = "***"
MIN_SECRET_LENGTH = 3
"""Shorter values are not masked: they would mask ordinary words (and cannot be real secrets)."""


def _parts(value: str) -> list[str]:
    """A secret value and the pieces of it that could show up on their own."""
    parts = [value]
    try:
        split = urlsplit(value)
    except ValueError:
        split = None
    if split is not None and split.password:
        parts += [split.password, unquote(split.password)]
    if ":" in value and "://" not in value:  # a user:password token
        parts.append(value.split(":", 1)[1])
    return parts


def secret_values(assignment: WorkerAssignment, environ: Mapping[str, str]) -> list[str]:
    """The values of the environment variables the assignment names as secrets."""
    names = [assignment.milvus.token_env]
    if assignment.source.sql is not None:
        names.append(assignment.source.sql.url_env)
    return secret_values_of(names, environ)


def secret_values_of(names: Iterable[str | None], environ: Mapping[str, str]) -> list[str]:
    """The values (and their password parts) of the environment variables ``names``."""
    return [part for name in names if name and environ.get(name) for part in _parts(environ[name])]


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def install(self, logger: logging.Logger) -> None:
        """Masks secrets in every record that reaches ``logger``'s handlers."""
        for handler in logger.handlers:
            handler.addFilter(_RedactingFilter(self))


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self._redact(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
