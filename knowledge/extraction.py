"""Text out of an uploaded file: .txt, .md, .html and .pdf, nothing else.

Markdown and HTML come out as markdown-style text (``#`` heading lines), so one chunker
splits both by their headings. Every refusal is an ``AppError`` with a stable code:
``unsupported_file``, ``empty_document``, ``bad_document`` or ``too_large``.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from django.conf import settings

from voiceapp.errors import BadDocument, EmptyDocument, TooLarge, UnsupportedFile

logger = logging.getLogger(__name__)

#: File suffix → kind. Anything else is refused before it is read.
KINDS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
#: Kinds whose text carries ``#`` headings the chunker splits by.
HEADED_KINDS = frozenset({"md", "html"})


@dataclass(frozen=True)
class ExtractedText:
    kind: str
    title: str  # from the content (first heading, <title>, PDF metadata); may be ""
    text: str

    @property
    def has_headings(self) -> bool:
        return self.kind in HEADED_KINDS


def max_file_bytes() -> int:
    return int(settings.KNOWLEDGE["MAX_FILE_MB"] * 1024 * 1024)


def kind_of(name: str) -> str:
    """The kind for a file name, or ``UnsupportedFile``."""
    suffix = PurePath(name).suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        raise UnsupportedFile(
            f"{name or 'the file'}: only .txt, .md, .html and .pdf files are accepted"
        )
    return kind


def size_check(size: int) -> None:
    limit = max_file_bytes()
    if size > limit:
        raise TooLarge(
            f"the document may be at most {settings.KNOWLEDGE['MAX_FILE_MB']:g} MB "
            f"({limit} bytes); it has {size} bytes"
        )
    if size == 0:
        raise EmptyDocument("the file is empty")


def text_extract(*, name: str, data: bytes) -> ExtractedText:
    """Read ``data`` as the kind its file ``name`` says; refuse what cannot be indexed."""
    kind = kind_of(name)
    size_check(len(data))
    if kind == "pdf":
        title, text = _pdf_text(data)
    else:
        raw = _decode(data, name)
        if kind == "html":
            title, text = html_to_text(raw)
        elif kind == "md":
            title, text = "", markdown_clean(raw)
        else:
            title, text = "", raw
    text = _tidy(text)
    if not re.search(r"\w", text):
        raise EmptyDocument(f"{name}: no text found in the document")
    return ExtractedText(kind=kind, title=title or _first_heading(text, kind), text=text)


def pasted_text(*, text: str) -> ExtractedText:
    """Text typed or pasted in (REST JSON, admin): read as markdown, which plain text is."""
    size_check(len(text.encode("utf-8")))
    cleaned = _tidy(markdown_clean(text))
    if not re.search(r"\w", cleaned):
        raise EmptyDocument("the text is empty")
    return ExtractedText(kind="md", title=_first_heading(cleaned, "md"), text=cleaned)


# --- plain text and markdown -------------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise UnsupportedFile(f"{name}: the content is binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older Windows exports; cp1252 rejects only a few bytes, latin-1 accepts all.
        for encoding in ("cp1252", "latin-1"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    raise BadDocument(f"{name}: the text encoding could not be read")  # pragma: no cover


_FENCE = re.compile(r"^\s*(```|~~~)")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(?=\S)(.+?)(?<=\S)\1")
_SETEXT = re.compile(r"^(=+|-+)\s*$")


def markdown_clean(text: str) -> str:
    """Markdown without its markup: ``#`` headings stay, links and emphasis become words.

    Setext headings (a line underlined with ``===`` or ``---``) become ``#`` headings;
    fenced code keeps its lines but no heading is read inside it.
    """
    out: list[str] = []
    in_fence = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line.replace("#", "").rstrip())
            continue
        if _SETEXT.match(line) and out and out[-1].strip() and not out[-1].startswith("#"):
            out[-1] = ("# " if line.lstrip().startswith("=") else "## ") + out[-1].strip()
            continue
        line = _IMAGE.sub(r"\1", line)
        line = _LINK.sub(r"\1", line)
        line = _EMPHASIS.sub(r"\2", line)
        line = re.sub(r"^\s*>\s?", "", line)  # block quotes
        line = re.sub(r"^\s*\|?\s*:?-{3,}.*$", "", line)  # table rulers
        out.append(line.rstrip())
    return "\n".join(out)


def _first_heading(text: str, kind: str) -> str:
    if kind not in HEADED_KINDS:
        return ""
    match = re.search(r"^#{1,6}\s+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


def _tidy(text: str) -> str:
    text = text.replace("\u00a0", " ").replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- HTML ----------------------------------------------------------------------------------

_BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption footer form header hr li "
    "main ol p pre section table tbody td th thead tr ul".split()
)
#: Not content: code, styles, and a page's navigation menus.
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head", "nav"})


class _HtmlText(HTMLParser):
    """Visible text of a page, with ``h1`` to ``h6`` as ``#`` lines and blocks as breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._heading: str | None = None
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = tag
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in _BLOCKS:
            self.parts.append("\n")
            self._pre += tag == "pre"
            if tag == "li":
                self.parts.append("- ")
            elif tag in ("td", "th"):
                self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag == self._heading:
            self._heading = None
            self.parts.append("\n\n")
        elif tag in _BLOCKS:
            self._pre = max(0, self._pre - (tag == "pre"))
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            # Source line breaks are just spaces in HTML (but in <pre>); blocks break lines.
            self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> tuple[str, str]:
    """``(title, text)`` of an HTML page; the title is ``<title>``, else the first heading."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    # Inline whitespace of the source means nothing; line breaks came from the blocks.
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return " ".join(parser.title.split()), "\n".join(lines)


# --- PDF -----------------------------------------------------------------------------------


def _pdf_text(data: bytes) -> tuple[str, str]:
    """Text of every page with pypdf, pages separated by blank lines.

    A scanned PDF has images and no text layer: that is an ``empty_document`` (there is no
    OCR here), which the caller reports.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise BadDocument("the file is not a PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise BadDocument("the PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = ""
        if reader.metadata is not None and reader.metadata.title:
            title = str(reader.metadata.title).strip()
    except BadDocument:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as err:
        logger.info("unreadable PDF: %s", err)
        raise BadDocument(f"the PDF could not be read ({type(err).__name__})") from err
    return title, "\n\n".join(_unwrap(page) for page in pages)


def _unwrap(page: str) -> str:
    """Join the hard line breaks of PDF text; keep blank lines as paragraph breaks."""
    page = re.sub(r"-\n(?=[a-z])", "", page)  # words hyphenated at the line end
    paragraphs = re.split(r"\n\s*\n", page)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
