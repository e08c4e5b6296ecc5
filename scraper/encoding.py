"""Which text encoding a body is in, in the order browsers decide it.

WHATWG's sniffing order, with w3lib's label resolution (``latin1`` and ``ascii``
mean windows-1252, as in browsers): a byte order mark, then the HTTP charset,
then a ``<meta>`` declaration in the first 4 KB, then UTF-8 if the body is valid
UTF-8, then detection. Only real text encodings are accepted from a server:
``charset=base64`` (or ``hex``, ``rot13``, ``zlib``: codecs that are not text
encodings) and EBCDIC code pages are ignored as junk and sniffing goes on.
Detection needs evidence: with fewer than 16 non-ASCII bytes it is windows-1252.
``utf-16``/``utf-32`` without a BOM are read big-endian (RFC 2781 4.3). Among
the Latin single-byte code pages that detection cannot tell apart (a French page
scores as well in cp1257 as in cp1252), windows-1252 wins, as browsers default.
JSON is always UTF-8/16/32 (RFC 8259 8.1), whatever the header says.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

__all__ = ["detect_encoding", "decode", "text_encoding"]

# EBCDIC code pages Python knows: never the encoding of a web page
_EBCDIC = frozenset({"cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140"})
# Latin single-byte code pages detection confuses with each other; cp1252 wins a tie
_LATIN = frozenset({
    "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "latin_1", "iso8859_2", "iso8859_3",
    "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15",
    "iso8859_16", "mac_latin2", "mac_roman", "mac_iceland", "cp775", "cp850", "cp852",
})
_HIGH = bytes(range(128, 256))
_EVIDENCE = 16  # non-ASCII bytes detection needs before its guess beats the default
# without a byte order mark, RFC 2781 4.3: big-endian
_NO_BOM = {"utf-16": "utf-16-be", "utf-32": "utf-32-be"}


@lru_cache(maxsize=256)
def text_encoding(label: str | None) -> str | None:
    """The Python codec name of ``label`` if it names a text encoding a web page can
    be in; None for unknown labels, non-text codecs (base64, zlib ...) and EBCDIC."""
    if not label:
        return None
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    name = codecs.lookup(info.name).name.replace("-", "_")
    if name in _EBCDIC:
        return None
    return _NO_BOM.get(info.name, info.name)


def detect_encoding(body: bytes, content_type: str | None) -> str:
    """The encoding ``body`` is to be decoded with (see the module docstring)."""
    bom = read_bom(body)[0]
    if bom:
        return bom
    declared = text_encoding(http_content_type_encoding(content_type))
    if declared:
        return declared
    declared = text_encoding(html_body_declared_encoding(body[:4096]))
    if declared:
        # a page cannot declare itself UTF-16 in ASCII (WHATWG: such a meta means UTF-8)
        return "utf-8" if declared.startswith("utf-16") else declared
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    return _guess(body)


def _guess(body: bytes) -> str:
    sample = body[:65536]
    if len(sample) - len(sample.translate(None, _HIGH)) < _EVIDENCE:
        return "cp1252"  # too few non-ASCII bytes to tell anything apart: the web's default
    from charset_normalizer import from_bytes

    matches = from_bytes(sample, cp_exclusion=sorted(_EBCDIC))
    best = matches.best()
    if best is None:
        return "cp1252"
    name = best.encoding
    if name in _LATIN and any(m.encoding == "cp1252" for m in matches):
        return "cp1252"
    return name


def decode(body: bytes, encoding: str) -> str:
    """``body`` as text: its BOM (if any) stripped, undecodable bytes replaced."""
    bom, bom_bytes = read_bom(body)
    if bom and bom_bytes:
        body = body[len(bom_bytes):]
    return body.decode(encoding, errors="replace")
