"""Text extraction: what each accepted kind gives, and every refusal's stable code."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.extraction import html_to_text, markdown_clean, pasted_text, text_extract
from tests.knowledge.pdf import pdf_bytes
from voiceapp.errors import ErrorCode

HTML = """<!doctype html><html><head><title> Coop   guide </title>
<style>h1 { color: red }</style><script>var x = "<h1>not a heading</h1>";</script></head>
<body><nav>Menu</nav><h1>Housing</h1><p>Give each hen
  four square feet.</p><h2>Perches &amp; roosts</h2><ul><li>Wooden perches.</li>
<li>No metal.</li></ul><table><tr><td>Nest</td><td>1 per 4 hens</td></tr></table></body></html>"""


def test_text_file_is_read_as_is() -> None:
    result = text_extract(name="notes.TXT", data=b"Line one.\r\nLine two.\n")
    assert (result.kind, result.title, result.text) == ("txt", "", "Line one.\nLine two.")
    assert not result.has_headings


def test_text_in_windows_encoding_is_decoded() -> None:
    assert text_extract(name="a.txt", data="Temperatur 37,5 °C".encode("cp1252")).text == (
        "Temperatur 37,5 °C"
    )


def test_markdown_keeps_headings_and_drops_markup() -> None:
    source = (
        "Title\n=====\n\nSome **bold** and *italic* and `code`, a [link](http://x) "
        "and ![an image](i.png).\n\n```\n# not a heading\n```\n\n## Section ##\n> quoted\n"
    )
    result = text_extract(name="guide.md", data=source.encode())
    assert result.kind == "md" and result.has_headings
    assert result.title == "Title"
    assert result.text.splitlines()[0] == "# Title"
    assert "Some bold and italic and code, a link and an image." in result.text
    assert "not a heading" in result.text
    assert "# not a heading" not in result.text  # a heading inside code stays text
    assert "## Section" in result.text and "quoted" in result.text


def test_markdown_clean_turns_setext_headings_into_hashes() -> None:
    assert markdown_clean("Top\n===\ntext\nSub\n---\nmore") == "# Top\ntext\n## Sub\nmore"


def test_html_gives_title_headings_and_visible_text_only() -> None:
    title, text = html_to_text(HTML)
    assert title == "Coop guide"
    assert "# Housing" in text and "## Perches & roosts" in text
    assert "Give each hen four square feet." in text
    assert "- Wooden perches." in text and "- No metal." in text
    assert "Nest" in text and "1 per 4 hens" in text
    assert "color" not in text and "not a heading" not in text
    result = text_extract(name="guide.html", data=HTML.encode())
    assert result.kind == "html" and result.title == "Coop guide"


def test_pdf_text_and_title() -> None:
    data = pdf_bytes(
        [["Incubation at 37.5 degrees.", "Turn the eggs daily."], ["Hatch on day 21."]],
        title="Hatching notes",
    )
    result = text_extract(name="hatch.pdf", data=data)
    assert result.kind == "pdf" and result.title == "Hatching notes"
    assert "Incubation at 37.5 degrees. Turn the eggs daily." in result.text
    assert "Hatch on day 21." in result.text


def test_pasted_text_is_markdown() -> None:
    result = pasted_text(text="# Feed\n\nLayer feed has calcium.")
    assert result.title == "Feed" and result.has_headings


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("report.docx", b"PK\x03\x04 anything", ErrorCode.UNSUPPORTED_FILE),
        ("archive.zip", b"PK", ErrorCode.UNSUPPORTED_FILE),
        ("no-suffix", b"text", ErrorCode.UNSUPPORTED_FILE),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ErrorCode.UNSUPPORTED_FILE),
        ("empty.md", b"", ErrorCode.EMPTY_DOCUMENT),
        ("blank.txt", b"  \n\n\t ", ErrorCode.EMPTY_DOCUMENT),
        ("markup.html", b"<html><script>x()</script><p> </p></html>", ErrorCode.EMPTY_DOCUMENT),
        ("fake.pdf", b"this is not a pdf", ErrorCode.BAD_DOCUMENT),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", ErrorCode.BAD_DOCUMENT),
        ("blank.pdf", pdf_bytes([[]]), ErrorCode.EMPTY_DOCUMENT),
    ],
)
def test_refusals_carry_a_stable_code(name: str, data: bytes, code: ErrorCode) -> None:
    with pytest.raises(Exception) as caught:
        text_extract(name=name, data=data)
    assert getattr(caught.value, "code", None) == code, caught.value


def test_oversized_files_and_text_are_too_large(settings: Any) -> None:
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "MAX_FILE_MB": 0.001}  # 1048 bytes
    with pytest.raises(Exception) as caught:
        text_extract(name="big.txt", data=b"word " * 300)
    assert caught.value.code == ErrorCode.TOO_LARGE and caught.value.http_status == 413
    with pytest.raises(Exception) as caught:
        pasted_text(text="word " * 300)
    assert caught.value.code == ErrorCode.TOO_LARGE
    assert text_extract(name="small.txt", data=b"word " * 200).text
