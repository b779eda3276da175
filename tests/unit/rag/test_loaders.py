"""Each format's loader keeps the structure citations need: headings, pages, entries."""

from __future__ import annotations

import json
import time

import pytest
from lockgate.rag.errors import CorruptDocument, DocumentError, UnsupportedFormat
from lockgate.rag.loaders import detect_format, load

from tests.unit.rag.documents_fixtures import docx, pdf


def headings(document) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(b.level, b.text) for b in document.blocks if b.kind == "heading"]


def texts(document) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.text for b in document.blocks if b.kind == "text"]


def test_plain_text_splits_paragraphs_and_titles_from_the_filename() -> None:
    doc = load(b"First line\ncontinues here.\n\nSecond paragraph.", filename="shipping_faq.txt")
    assert doc.title == "shipping faq"
    assert texts(doc) == ["First line continues here.", "Second paragraph."]


def test_markdown_headings_lists_code_and_inline_markup() -> None:
    source = (
        b"# Refund guide\n\nIntro with a [link](http://x) and **bold**.\n\n"
        b"Setext section\n--------------\n\n- item one\n- item two\n\n"
        b"```\ncode block\n```\n\n### Deep heading ###\nlast words\n\n---\n"
    )
    doc = load(source, filename="guide.md")
    assert doc.title == "Refund guide"
    assert headings(doc) == [(1, "Refund guide"), (2, "Setext section"), (3, "Deep heading")]
    assert texts(doc) == [
        "Intro with a link and bold.",
        "- item one",
        "- item two",
        "code block",
        "last words",
    ]


def test_markdown_closing_hashes_need_a_space_before_them() -> None:
    doc = load(b"# C#\n\n## Setup ##\n\n#  Spaced out   #  \nbody\n", filename="notes.md")
    assert headings(doc) == [(1, "C#"), (2, "Setup"), (1, "Spaced out")]


@pytest.mark.parametrize(
    "line",
    [
        "[x " * 20_000,  # openers without a label's end
        "[a](b " * 10_000,  # links never closed
        "_x " * 20_000,  # emphasis never closed
        "`x " * 20_000,
        "# a" + " " * 60_000 + "b",  # a heading with a long run of spaces
        "# a" + " #" * 30_000 + " x",
    ],
    ids=["brackets", "links", "underscores", "backticks", "heading-spaces", "heading-hashes"],
)
def test_a_60_kb_line_of_markup_loads_in_linear_time(line: str) -> None:
    started = time.perf_counter()
    doc = load(f"{line}\n\nThe end.".encode(), filename="long.md")
    assert len(doc.blocks) == 2  # loaded, not dropped
    assert time.perf_counter() - started < 3.0  # it took minutes before


def test_html_skips_scripts_and_navigation_and_keeps_headings() -> None:
    html = b"""<html><head><title>Help centre</title><script>var x = 1;</script></head>
    <body><nav>Home | About</nav><h1>Returns</h1><p>Return within <b>30 days</b>.</p>
    <h2>Exceptions</h2><ul><li>Gift cards</li><li>Sale items</li></ul></body></html>"""
    doc = load(html, filename="help.html")
    assert doc.title == "Help centre"
    assert headings(doc) == [(1, "Returns"), (2, "Exceptions")]
    assert texts(doc) == ["Return within 30 days.", "Gift cards", "Sale items"]


def test_pdf_keeps_page_numbers_and_metadata_title() -> None:
    doc = load(pdf(["Shipping takes three days.", "Refunds take a week."], title="Policies"),
               filename="policies.pdf")  # fmt: skip
    assert doc.title == "Policies"
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "Shipping takes three days."),
        (2, "Refunds take a week."),
    ]


def test_docx_headings_by_style() -> None:
    doc = load(
        docx("Warranty", [("Coverage", ["Two years on parts."]), ("Claims", ["Email us."])]),
        filename="warranty.docx",
    )
    assert doc.title == "Warranty"
    assert headings(doc) == [(1, "Warranty"), (1, "Coverage"), (1, "Claims")]
    assert texts(doc) == ["Two years on parts.", "Email us."]


def test_json_lines_entries_carry_their_own_title_and_url() -> None:
    rows = [
        {
            "id": "a1",
            "title": "Gift cards",
            "text": "Gift cards never expire.",
            "url": "https://h/a1",
        },
        {"id": "a2", "title": "Pre-orders", "text": "Pre-orders ship on release."},
    ]
    doc = load("\n".join(json.dumps(r) for r in rows).encode(), filename="kb.jsonl")
    body = [b for b in doc.blocks if b.kind == "text"]
    assert [(b.entry, b.title, b.url) for b in body] == [
        ("a1", "Gift cards", "https://h/a1"),
        ("a2", "Pre-orders", None),
    ]


def test_content_type_wins_over_extension() -> None:
    assert detect_format("page.txt", "text/html; charset=utf-8") == "html"
    assert detect_format("notes.MD") == "markdown"


@pytest.mark.parametrize(
    ("content", "filename", "error", "message"),
    [
        (b"x", "image.png", UnsupportedFormat, "image.png: unsupported format"),
        (b"%PDF-1.4 garbage", "broken.pdf", CorruptDocument, "broken.pdf: unreadable PDF"),
        (b"not a zip", "broken.docx", CorruptDocument, "broken.docx: unreadable DOCX"),
        (b"\xff\xfe\x00t\x00e", "latin.txt", CorruptDocument, "latin.txt: binary data"),
        (b"caf\xe9", "latin.txt", CorruptDocument, "latin.txt: not UTF-8"),
        (b'{"title": "no text"}', "kb.jsonl", DocumentError, "kb.jsonl: line 1 needs"),
        (b"{oops", "kb.jsonl", CorruptDocument, "kb.jsonl: line 1 is not JSON"),
        (b"\n\n  \n", "empty.md", DocumentError, "empty.md: no text found"),
    ],
)
def test_bad_input_gets_a_clear_error_naming_the_file(
    content: bytes, filename: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace(".", r"\.")):
        load(content, filename=f"/uploads/{filename}")
