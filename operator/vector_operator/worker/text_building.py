"""The text to embed, built from a row's columns: joined with newlines, or through a template.

Pure: values in, a text (or the reason there is none) out. Bytes are decoded as strict UTF-8 and
strings must be encodable as UTF-8 (a lone surrogate from a JSON escape is not), because the
tokenizer would otherwise embed replacement characters instead of the user's text.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from vector_operator.contract.result import SkipReason
from vector_operator.sources.records import UndecodableText


class InvalidTemplate(ValueError):
    """The text template cannot be used; the message says why."""


def template_columns(template: str) -> tuple[str, ...]:
    """The column names a template refers to, in order of first use.

    Only plain names are allowed: positional fields (``{}``, ``{0}``), attribute and index access
    (``{a.b}``, ``{a[0]}``) and conversions other than ``!s`` are refused, so a template can read
    the row's values and nothing else.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise InvalidTemplate(f"textTemplate is not a valid format string: {error}") from None
    for _, name, format_spec, conversion in parsed:
        if name is None:
            continue
        if not name or name.isdigit():
            raise InvalidTemplate(
                "textTemplate fields must name a column, e.g. {title}; {} and {0} are not allowed"
            )
        if "." in name or "[" in name:
            raise InvalidTemplate(
                f"textTemplate field {{{name}}} must be a plain column name, without . or ["
            )
        if conversion not in (None, "s"):
            raise InvalidTemplate(f"textTemplate field {{{name}!{conversion}}}: only !s is allowed")
        if format_spec and "{" in format_spec:
            raise InvalidTemplate(
                f"textTemplate field {{{name}}}: nested fields in a format spec are not allowed"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise InvalidTemplate("textTemplate refers to no column: use {column} for each value, e.g. {title}")
    return tuple(names)


def _is_text_like(value: object) -> bool:
    return isinstance(value, str | bytes | bytearray | memoryview)


def _as_text(value: object) -> str | SkipReason | None:
    """A column value as text; None for NULL; INVALID_UTF8 when it cannot be text."""
    if value is None:
        return None
    if isinstance(value, UndecodableText):
        return SkipReason.INVALID_UTF8
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return SkipReason.INVALID_UTF8
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SkipReason.INVALID_UTF8
    return text


class TextBuilder:
    """Builds the text to embed from a row: either ``columns`` joined with newlines (NULL columns
    left out), or ``template`` formatted with the row's values (NULL as empty)."""

    def __init__(self, *, columns: Sequence[str] | None = None, template: str | None = None) -> None:
        if (columns is None) == (template is None):
            raise ValueError("give exactly one of columns and template")
        self._template = template
        self.columns: tuple[str, ...] = (
            template_columns(template) if template is not None else tuple(columns or ())
        )
        if not self.columns:
            raise ValueError("the text needs at least one column")

    def build(self, values: Mapping[str, object]) -> str | SkipReason:
        """The text for a row whose column values are ``values``, or why there is none."""
        texts: dict[str, str] = {}
        for column in self.columns:
            text = _as_text(values.get(column))
            if isinstance(text, SkipReason):
                return text
            if text is not None:
                texts[column] = text
        if not texts:
            return SkipReason.NULL_TEXT
        if not any(text.strip() for text in texts.values()):  # a template's own words are no content
            return SkipReason.EMPTY_TEXT
        if self._template is None:
            built = "\n".join(texts[column] for column in self.columns if column in texts)
        else:
            # Numbers, dates and the like keep their type, so that "{price:.2f}" works.
            arguments = {
                column: values[column]
                if column in texts and not _is_text_like(values[column])
                else texts.get(column, "")
                for column in self.columns
            }
            try:
                built = self._template.format_map(arguments)
            except (ValueError, TypeError):
                return SkipReason.TEMPLATE_ERROR
        if not built.strip():
            return SkipReason.EMPTY_TEXT
        return built
