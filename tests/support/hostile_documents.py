"""The documents an attacker uploads: small files that expand into huge work (issue 9.1)."""

from __future__ import annotations

import io
import zipfile

from tests.unit.rag.documents_fixtures import docx, pdf

_BODY = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body>%s</w:body></w:document>"
)


def _with_body(body: bytes) -> bytes:
    """A real DOCX (python-docx's own) whose document body is replaced."""
    source = zipfile.ZipFile(io.BytesIO(docx("Bomb", [("Intro", ["hello"])])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "word/document.xml":
                data = _BODY % body
            target.writestr(info.filename, data)
    return out.getvalue()


def empty_paragraphs_docx(count: int = 5_000_000) -> bytes:
    """~80 KB on the wire, 30 MB of XML: five million empty paragraphs."""
    return _with_body(b"<w:p/>" * count)


def wall_of_text_docx(megabytes: float = 2.0) -> bytes:
    """~45 KB on the wire, 2 MB of (repetitive) text: thousands of chunks."""
    sentence = b"The quick brown fox jumps over the lazy dog near the riverbank again. "
    paragraph = b"<w:p><w:r><w:t>" + sentence * 8 + b"</w:t></w:r></w:p>"
    return _with_body(paragraph * int(megabytes * 1024 * 1024 / (len(sentence) * 8)))


def many_pages_pdf(pages: int = 6000) -> bytes:
    """About 1 MB: one line of text on each of thousands of pages."""
    return pdf([f"Page {n} says very little." for n in range(pages)])
