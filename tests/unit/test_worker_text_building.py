"""Building the text to embed from a row, and the reasons a row has none."""

from __future__ import annotations

import pytest

from vector_operator.contract.result import SkipReason
from vector_operator.sources.records import UndecodableText
from vector_operator.worker.text_building import InvalidTemplate, TextBuilder, template_columns


def test_columns_are_joined_with_newlines_in_order() -> None:
    builder = TextBuilder(columns=["title", "body"])
    assert builder.build({"body": "Body text.", "title": "Title"}) == "Title\nBody text."


def test_null_columns_are_left_out() -> None:
    builder = TextBuilder(columns=["title", "body"])
    assert builder.build({"title": None, "body": "Only the body."}) == "Only the body."


def test_all_columns_null_or_missing_is_null_text() -> None:
    builder = TextBuilder(columns=["title", "body"])
    assert builder.build({"title": None, "body": None}) is SkipReason.NULL_TEXT
    assert builder.build({}) is SkipReason.NULL_TEXT


def test_whitespace_only_is_empty_text() -> None:
    builder = TextBuilder(columns=["title", "body"])
    assert builder.build({"title": " ", "body": "\n\t"}) is SkipReason.EMPTY_TEXT
    assert builder.build({"title": "", "body": None}) is SkipReason.EMPTY_TEXT


def test_bytes_are_decoded_as_utf8() -> None:
    builder = TextBuilder(columns=["body"])
    assert builder.build({"body": "café".encode()}) == "café"


@pytest.mark.parametrize(
    "value",
    [b"caf\xe9", bytearray(b"\xff\xfe"), UndecodableText(b"\xc3\x28"), "lone surrogate \udc80"],
    ids=["latin-1 bytes", "bytearray", "undecodable sqlite text", "lone surrogate"],
)
def test_text_that_is_not_valid_utf8_is_refused(value: object) -> None:
    builder = TextBuilder(columns=["title", "body"])
    assert builder.build({"title": "fine", "body": value}) is SkipReason.INVALID_UTF8


def test_template_formats_the_row() -> None:
    builder = TextBuilder(template="{title}: {body} ({year})")
    assert builder.columns == ("title", "body", "year")
    assert (
        builder.build({"title": "Dune", "body": "A desert planet.", "year": 1965})
        == "Dune: A desert planet. (1965)"
    )


def test_template_keeps_numbers_numbers() -> None:
    builder = TextBuilder(template="{name} costs {price:.2f} EUR")
    assert builder.build({"name": "tea", "price": 3.5}) == "tea costs 3.50 EUR"


def test_template_renders_null_as_empty() -> None:
    builder = TextBuilder(template="{title}\n{body}")
    assert builder.build({"title": None, "body": "Body."}) == "\nBody."
    assert builder.build({"title": None, "body": None}) is SkipReason.NULL_TEXT


def test_template_with_only_empty_values_is_empty_text() -> None:
    builder = TextBuilder(template="Title: {title}. Body: {body}")
    assert builder.build({"title": " ", "body": None}) is SkipReason.EMPTY_TEXT


def test_template_that_does_not_fit_a_row_skips_that_row() -> None:
    builder = TextBuilder(template="{name} costs {price:.2f}")
    assert builder.build({"name": "tea", "price": "cheap"}) is SkipReason.TEMPLATE_ERROR


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{}", "must name a column"),
        ("{0}", "must name a column"),
        ("{row.__class__}", "plain column name"),
        ("{row[0]}", "plain column name"),
        ("{title!r}", "only !s"),
        ("{title:{width}}", "nested"),
        ("no fields at all", "refers to no column"),
        ("{unclosed", "not a valid format string"),
    ],
)
def test_templates_may_only_read_plain_columns(template: str, complaint: str) -> None:
    with pytest.raises(InvalidTemplate, match=complaint):
        template_columns(template)


def test_template_columns_in_order_of_first_use() -> None:
    assert template_columns("{b} {a} {b!s} {c:>10}") == ("b", "a", "c")
