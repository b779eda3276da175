"""Format loaders: bytes in, structure (headings, paragraphs, pages) out.

Structure is what lets chunks end where meaning ends and cite a section or a page, so each loader
keeps what its format says about it rather than flattening to one string.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import PurePosixPath

from lockgate.policy import IngestionPolicy
from lockgate.rag.errors import CorruptDocument, DocumentError, DocumentTooLarge, UnsupportedFormat
from lockgate.rag.model import Block, LoadedDocument

MAX_BYTES = 50 * 1024 * 1024
_MB = 1024 * 1024

_BY_EXTENSION = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_BY_CONTENT_TYPE = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/json-lines": "jsonl",
}

SUPPORTED_EXTENSIONS = frozenset(_BY_EXTENSION)


def detect_format(filename: str | None, content_type: str | None = None) -> str:
    if content_type:
        kind = _BY_CONTENT_TYPE.get(content_type.split(";")[0].strip().lower())
        if kind:
            return kind
    if filename:
        kind = _BY_EXTENSION.get(PurePosixPath(filename).suffix.lower())
        if kind:
            return kind
    supported = ", ".join(sorted(_BY_EXTENSION))
    raise UnsupportedFormat(
        f"{_name(filename)}: unsupported format"
        f"{f' ({content_type})' if content_type else ''}; supported: {supported}"
    )


def load(
    content: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    limits: IngestionPolicy | None = None,
) -> LoadedDocument:
    """Parses a document; raises `DocumentError` subclasses naming the file on bad input, and
    `DocumentTooLarge` naming the limit when it is over one.

    Whatever a parser trips on inside the bytes (an lxml syntax error, a pypdf limit) is the
    document's fault: `CorruptDocument`, never an error worth retrying."""
    limits = limits or IngestionPolicy()
    name = _name(filename)
    kind = detect_format(filename, content_type)
    if len(content) > MAX_BYTES:
        raise DocumentTooLarge(f"{name}: {len(content)} bytes exceeds {MAX_BYTES}", limit="bytes")
    _check_expanded(name, len(content), limits)
    try:
        document = _LOADERS[kind](content, _stem(filename), name, limits)
    except (DocumentError, MemoryError):
        raise
    except Exception as exc:
        raise CorruptDocument(f"{name}: unreadable {kind} ({type(exc).__name__})") from None
    if len(document.blocks) > limits.max_paragraphs:
        raise _too_many(name, len(document.blocks), "paragraphs", limits.max_paragraphs)
    if not any(block.text.strip() for block in document.blocks if block.kind == "text"):
        raise DocumentError(f"{name}: no text found")
    return document


def _check_expanded(name: str, size: int, limits: IngestionPolicy) -> None:
    if size > limits.max_expanded_mb * _MB:
        raise DocumentTooLarge(
            f"{name}: expands to {size / _MB:.1f} MB, over the limit of"
            f" {limits.max_expanded_mb:g} MB (max_expanded_mb)",
            limit="max_expanded_mb",
        )


def _too_many(name: str, count: int, what: str, limit: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"{name}: {count} {what}, over the limit of {limit} (max_{what})", limit=f"max_{what}"
    )


def _name(filename: str | None) -> str:
    return PurePosixPath(filename).name if filename else "document"


def _stem(filename: str | None) -> str:
    if not filename:
        return "Untitled"
    return PurePosixPath(filename).stem.replace("_", " ").replace("-", " ").strip() or "Untitled"


def _decode(content: bytes, name: str) -> str:
    if b"\x00" in content[:8192]:
        raise CorruptDocument(f"{name}: binary data where text was expected")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptDocument(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _paragraphs(text: str) -> list[str]:
    parts = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [" ".join(p.split()) for p in parts if p.strip()]


def _load_text(content: bytes, title: str, name: str, limits: IngestionPolicy) -> LoadedDocument:
    blocks = [Block("text", p) for p in _paragraphs(_decode(content, name))]
    return LoadedDocument(title, blocks)


# Every pattern here runs in linear time on any line: a paragraph or heading is one line of
# the user's file, and patterns that backtrack (a lazy group before `\s*#*\s*$`, a label
# that may contain `[`) took seconds on a 15 KB line and minutes on 60 KB.
_ATX = re.compile(r"^(#{1,6})\s+(.*)$")
_FENCE = re.compile(r"^(```|~~~)")
_SETEXT = re.compile(r"^(=+|-{3,})$")
_RULE = re.compile(r"^([-*_])(\s*\1){2,}$")
_LINK = re.compile(r"!?\[([^\[\]]*)\]\([^()]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.{1,500}?)(?<=\S)\1")
"""An emphasis span longer than 500 characters keeps its markers: a bound on how far each
opening `*` or `_` looks for its closing one."""


def _inline(text: str) -> str:
    return _EMPHASIS.sub(r"\2", _LINK.sub(r"\1", text))


def _heading_text(body: str) -> str:
    """An ATX heading's text without its optional closing `#`s (which need a space before
    them, as in CommonMark: `# C#` is about C#)."""
    body = body.strip()
    bare = body.rstrip("#")
    if bare != body and (not bare or bare[-1].isspace()):
        return bare.rstrip()
    return body


def _load_markdown(
    content: bytes, title: str, name: str, limits: IngestionPolicy
) -> LoadedDocument:
    lines = _decode(content, name).replace("\r\n", "\n").split("\n")
    blocks: list[Block] = []
    paragraph: list[str] = []
    first_h1: str | None = None

    def flush() -> None:
        if paragraph:
            text = " ".join(" ".join(paragraph).split())
            if text:
                blocks.append(Block("text", _inline(text)))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if _FENCE.match(stripped):
            flush()
            fence = stripped[:3]
            code: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                code.append(lines[i])
                i += 1
            if any(c.strip() for c in code):
                blocks.append(Block("text", "\n".join(code).strip()))
        elif match := _ATX.match(stripped):
            flush()
            level, text = len(match.group(1)), _inline(_heading_text(match.group(2)))
            if level == 1 and first_h1 is None:
                first_h1 = text
            blocks.append(Block("heading", text, level=level))
        elif len(paragraph) == 1 and _SETEXT.match(stripped):
            level = 1 if stripped.startswith("=") else 2
            text = _inline(paragraph.pop().strip())
            if level == 1 and first_h1 is None:
                first_h1 = text
            blocks.append(Block("heading", text, level=level))
        elif not stripped or _RULE.match(stripped):
            flush()
        elif re.match(r"^([-*+]|\d+[.)])\s+", stripped):
            flush()
            paragraph.append(stripped)
            flush()
        else:
            paragraph.append(stripped.lstrip("> "))
        i += 1
    flush()
    return LoadedDocument(first_h1 or title, blocks)


_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = {
    "p", "div", "li", "td", "th", "pre", "blockquote", "section", "article", "dd", "dt",
    "tr", "br", "table", "ul", "ol", "main", "header", "footer", "figcaption",
}  # fmt: skip
_SKIP = {"script", "style", "noscript", "template", "svg", "head", "nav"}


class _HtmlBlocks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.title = ""
        self._text: list[str] = []
        self._heading: int | None = None
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip += 1
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self._text.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        self._text.clear()
        if text:
            if self._heading is not None:
                self.blocks.append(Block("heading", text, level=self._heading))
            else:
                self.blocks.append(Block("text", text))
        self._heading = None

    def close(self) -> None:
        super().close()
        self._flush()


def _load_html(content: bytes, title: str, name: str, limits: IngestionPolicy) -> LoadedDocument:
    parser = _HtmlBlocks()
    parser.feed(_decode(content, name))
    parser.close()
    h1 = next((b.text for b in parser.blocks if b.kind == "heading" and b.level == 1), None)
    return LoadedDocument(" ".join(parser.title.split()) or h1 or title, parser.blocks)


def _load_pdf(content: bytes, title: str, name: str, limits: IngestionPolicy) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise CorruptDocument(f"{name}: encrypted PDF")
        if len(reader.pages) > limits.max_pages:
            raise _too_many(name, len(reader.pages), "pages", limits.max_pages)
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            blocks.extend(Block("text", p, page=number) for p in _pdf_paragraphs(text))
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptDocument(f"{name}: unreadable PDF ({type(exc).__name__})") from None
    return LoadedDocument(meta_title.strip() or title, blocks)


def _pdf_paragraphs(text: str) -> list[str]:
    """pypdf gives one line per visual line; a blank line or a line ending a sentence before a
    short gap is the best paragraph signal it leaves."""
    paragraphs = _paragraphs(text)
    if len(paragraphs) > 1:
        return paragraphs
    joined = re.sub(r"-\n(?=[a-z])", "", text)
    return [" ".join(joined.split())] if joined.strip() else []


def _load_docx(content: bytes, title: str, name: str, limits: IngestionPolicy) -> LoadedDocument:
    import zipfile

    import docx

    try:
        _check_docx_size(content, name, limits)
        document = docx.Document(io.BytesIO(content))
    except DocumentError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CorruptDocument(f"{name}: unreadable DOCX ({type(exc).__name__})") from None
    blocks: list[Block] = []
    doc_title = (document.core_properties.title or "").strip()
    for paragraph in document.paragraphs:
        text = " ".join(paragraph.text.split())
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style == "Title":
            doc_title = doc_title or text
            blocks.append(Block("heading", text, level=1))
        elif match := re.match(r"Heading (\d)", style):
            blocks.append(Block("heading", text, level=int(match.group(1))))
        else:
            blocks.append(Block("text", text))
    for table in document.tables:
        for row in table.rows:
            cells = " | ".join(" ".join(cell.text.split()) for cell in row.cells)
            if cells.strip(" |"):
                blocks.append(Block("text", cells))
    return LoadedDocument(doc_title or title, blocks)


def _check_docx_size(content: bytes, name: str, limits: IngestionPolicy) -> None:
    """A DOCX is a zip: its members' declared sizes are summed before anything is inflated (a
    reader never inflates past a member's declared size), and the paragraphs of the body are
    counted in the raw XML before an XML tree of millions of elements is built."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        _check_expanded(name, sum(info.file_size for info in archive.infolist()), limits)
        body = archive.read("word/document.xml")
    paragraphs = body.count(b"<w:p>") + body.count(b"<w:p ") + body.count(b"<w:p/>")
    if paragraphs > limits.max_paragraphs:
        raise _too_many(name, paragraphs, "paragraphs", limits.max_paragraphs)


def _load_jsonl(content: bytes, title: str, name: str, limits: IngestionPolicy) -> LoadedDocument:
    blocks: list[Block] = []
    for number, line in enumerate(_decode(content, name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise CorruptDocument(f"{name}: line {number} is not JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DocumentError(f"{name}: line {number} needs a string 'text' field")
        entry = str(row.get("id") or number)
        entry_title = str(row.get("title") or f"{title} #{entry}")
        url = row.get("url")
        url = str(url) if url else None
        blocks.append(
            Block("heading", entry_title, level=1, title=entry_title, url=url, entry=entry)
        )
        blocks.extend(
            Block("text", p, title=entry_title, url=url, entry=entry)
            for p in _paragraphs(row["text"])
        )
    return LoadedDocument(title, blocks)


_LOADERS: dict[str, Callable[[bytes, str, str, IngestionPolicy], LoadedDocument]] = {
    "text": _load_text,
    "markdown": _load_markdown,
    "html": _load_html,
    "pdf": _load_pdf,
    "docx": _load_docx,
    "jsonl": _load_jsonl,
}
