"""Images → item and container keys: QR codes and GS1 DataMatrix read with zxing-cpp, then normalised to the
SPEC §1 canonical keys. Errors name the code that was bad; they never crash the caller.

What a code may hold (SPEC §1): a GS1 Digital Link URL, a canonical key, or a GS1 element string — in
brackets ``(01)…(21)…``, FNC1/GS-separated as a GS1 DataMatrix carries it, or typed with spaces. Element
strings are parsed with biip, which knows every GS1 Application Identifier: AIs beyond 00/01/21 (expiry 17,
lot 10, …) are kept in ``elements``; an AI that does not exist is an error, as is a wrong check digit.

Photos are read in several passes (as taken, contrast-stretched, enlarged when small, sharpened, other
binarizers) and the results merged, so one photo can yield several codes even when each is only readable
in some pass.
"""
from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import zxingcpp
from biip import ParseConfig, ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_messages import GS1Message
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from tracker.errors import InvalidIdentifier, InvalidInput, TrackerError
from tracker.identifiers import ContainerKey, ItemKey, parse_code

__all__ = ["Decoded", "ScannedCode", "ImageLimits", "decode_image", "decode_keys", "read_code", "MAX_IMAGE_BYTES",
           "UPLOAD_FORMATS"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # what a phone or browser sends; no exotic decoders
_FORMATS = [zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.DataMatrix]
_GS = "\x1d"
_SYMBOLOGY_ID = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_BIIP_CONFIG = ParseConfig(separator_chars=[_GS, " "])
_FORMAT_NAMES = {"QRCode": "QRCode", "QR Code": "QRCode", "DataMatrix": "DataMatrix", "Data Matrix": "DataMatrix"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannedCode:
    """A code's canonical key (``01/{gtin14}/21/{serial}`` or ``00/{sscc18}``) and any further GS1 data
    it carried (AI → value, e.g. ``{"17": "271231", "10": "L1"}``)."""

    key: str
    elements: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoded:
    """One code found in an image: its content, where it was, and its key — or the reason it has none."""

    text: str
    format: str
    position: str
    key: str | None
    error: str | None = None
    elements: Mapping[str, str] = field(default_factory=dict)

    def to_json(self, *, file: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"file": file} if file is not None else {}
        doc.update({"format": self.format, "position": self.position, "text": self.text, "key": self.key,
                    "error": self.error})
        if self.elements:
            doc["elements"] = dict(self.elements)
        return doc


def printable(text: str) -> str:
    """The code's content for people: the FNC1 separator (GS) shown as ``<GS>``, other controls escaped."""
    text = text.replace(_GS, "<GS>")
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


# --- content → key ---------------------------------------------------------------------------------

def _key_from_elements(elements: list[tuple[str, str]]) -> ScannedCode:
    found = dict(elements)
    if "00" in found:
        key: ItemKey | ContainerKey = ContainerKey(sscc=found["00"])
        used = {"00"}
    elif "01" in found and "21" in found:
        key, used = ItemKey(gtin=found["01"], serial=found["21"]), {"01", "21"}
    elif "01" in found:
        raise InvalidIdentifier("it names a product (01) but no serial (21): only serialised items are tracked",
                                field="code")
    else:
        raise InvalidIdentifier("it names no serialised item (01)+(21) or container (00)", field="code")
    return ScannedCode(key=str(key), elements={ai: v for ai, v in elements if ai not in used})


def _element_string(body: str) -> ScannedCode:
    body = body.replace("<GS>", _GS)
    if not body[:1].isdigit() and not body.startswith("("):
        raise InvalidIdentifier("not a GS1 code (neither a Digital Link URL nor a GS1 element string)", field="code")
    try:
        if body.startswith("("):
            message = GS1Message.parse_hri(body, config=_BIIP_CONFIG)
        else:
            message = GS1Message.parse(body, config=_BIIP_CONFIG)
    except ParseError as exc:
        reason = printable(str(exc)).replace("\\x1d", "<GS>").rstrip(".")
        if m := re.match(r"Unknown GS1 Application Identifier '(\w+)'", reason):
            reason = f"unknown GS1 application identifier ({m.group(1)})"
        elif m := re.match(r"Failed to get GS1 Application Identifier from (.*)$", reason):
            reason = f"unknown GS1 application identifier at {m.group(1)}"
        raise InvalidIdentifier(f"not a valid GS1 element string: {reason}", field="code") from None
    return _key_from_elements([(es.ai.ai, es.value) for es in message.element_strings])


def _digital_link(text: str) -> ScannedCode:
    try:
        return ScannedCode(key=str(parse_code(text)))
    except InvalidIdentifier as first:
        # GS1 Digital Link allows qualifiers between 01 and 21 (``/01/…/10/LOT/21/SER``) and data
        # attributes in the query (``?17=271231``): biip reads the full syntax.
        try:
            uri = GS1DigitalLinkURI.parse(text)
        except (ParseError, ValueError):
            raise first from None
        return _key_from_elements([(es.ai.ai, es.value) for es in uri.element_strings])


def read_code(text: str) -> ScannedCode:
    """A scanned or typed code as a canonical key. Accepts a GS1 Digital Link URL (any host), a canonical key,
    or a GS1 element string (``(01)…(21)…``, FNC1/GS separated, or typed with spaces, optionally after a
    symbology identifier such as ``]d2``). Raises InvalidIdentifier whose message starts with the code and
    names the rule it broke (wrong check digit, unknown application identifier, no serial, …)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidIdentifier("empty code", field="code")
    text = text.strip()
    shown = repr(printable(text)) if len(text) <= 120 else repr(printable(text[:117]) + "...")
    try:
        if len(text) > 2048:
            raise InvalidIdentifier("the code is too long", field="code")
        if "://" in text or text.startswith("/"):
            return _digital_link(text)
        if text.startswith(("01/", "00/")):
            return ScannedCode(key=str(parse_code(text)))
        return _element_string(_SYMBOLOGY_ID.sub("", text, count=1))
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"{shown}: {exc.message}", field="code") from None


# --- images → codes ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class ImageLimits:
    """Bounds on the work one image may cost, for images from strangers (the consumer page's photo upload).

    Checked before any pixel is decoded: the byte size and the pixel count the header claims (a 50 KB PNG can
    claim 40 megapixels; Pillow's own decompression-bomb guard stays on behind this lower cap). A JPEG is
    decoded straight to a reduced scale (libjpeg's DCT scaling) and other formats are shrunk before scanning, so
    the passes run on at most ``max_side`` pixels a side; the full-size image is scanned only when that found
    nothing and time is left. Passes stop at ``seconds`` (checked between passes)."""

    max_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 24_000_000
    max_side: int = 2000
    seconds: float = 1.5
    formats: tuple[str, ...] = UPLOAD_FORMATS


def _too_large(what: str) -> InvalidInput:
    return InvalidInput(f"{what}: take the photo again closer to the code, or at a lower resolution",
                        code="image_too_large")


def _open(image: bytes | str | Path | Image.Image, limits: ImageLimits | None = None) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    max_bytes = limits.max_bytes if limits else MAX_IMAGE_BYTES
    max_pixels = limits.max_pixels if limits else MAX_PIXELS
    formats = limits.formats if limits else None
    try:
        if isinstance(image, (bytes, bytearray)):
            if len(image) > max_bytes:
                raise _too_large(f"the image is larger than {max_bytes / (1024 * 1024):g} MiB")
            img = Image.open(io.BytesIO(image), formats=formats)
        else:
            path = Path(image)
            if path.is_file() and path.stat().st_size > max_bytes:
                raise _too_large(f"{path} is larger than {max_bytes / (1024 * 1024):g} MiB")
            img = Image.open(path, formats=formats)
        # The header's size, before a single pixel is decoded.
        if img.width * img.height > max_pixels:
            raise _too_large(f"the image has {img.width}x{img.height} pixels, more than {max_pixels / 1e6:g} "
                             "megapixels")
        if limits is not None and img.format == "JPEG" and max(img.size) > limits.max_side:
            img.draft("RGB", (limits.max_side, limits.max_side))  # decode at 1/2, 1/4 or 1/8 scale
        img.load()
    except FileNotFoundError as exc:
        raise InvalidInput(f"{image} does not exist", code="invalid_image") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"{image} is a directory, not an image", code="invalid_image") from exc
    except Image.DecompressionBombError as exc:
        raise _too_large("the image claims too many pixels") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidInput("not a readable image (PNG, JPEG, ...)", code="invalid_image") from exc
    return ImageOps.exif_transpose(img)


def _passes(gray: Image.Image) -> Iterator[tuple[Image.Image, Any]]:
    """Variants of the photo, cheapest first, each with the binarizer to read it with."""
    yield gray, zxingcpp.Binarizer.LocalAverage
    stretched = ImageOps.autocontrast(gray, cutoff=1)
    yield stretched, zxingcpp.Binarizer.GlobalHistogram
    longest = max(gray.size)
    if longest < 1400:
        # Small codes: modules of 1-2 px are below what the detector finds; enlarge smoothly.
        factor = 2 if longest >= 500 else 3
        big = stretched.resize((gray.width * factor, gray.height * factor), Image.BICUBIC)
        yield big, zxingcpp.Binarizer.LocalAverage
        yield big.filter(ImageFilter.UnsharpMask(radius=2 * factor, percent=200, threshold=0)), \
            zxingcpp.Binarizer.LocalAverage
    # Blur and JPEG noise: sharpen edges back, and smooth speckle before thresholding.
    yield stretched.filter(ImageFilter.UnsharpMask(radius=3, percent=250, threshold=0)), zxingcpp.Binarizer.LocalAverage
    yield stretched.filter(ImageFilter.MedianFilter(3)), zxingcpp.Binarizer.LocalAverage
    if longest > 2200:
        yield ImageOps.autocontrast(gray.reduce(2), cutoff=1), zxingcpp.Binarizer.LocalAverage


def _format_name(fmt: Any) -> str:
    name = str(fmt).split(".")[-1]
    return _FORMAT_NAMES.get(name, name)


def _content(code: Any) -> str:
    """The code's content as text. GS1 symbols (FNC1 in first position) come as their raw element string with
    GS separators, which is unambiguous even when a serial contains brackets; other codes as UTF-8 text."""
    raw = bytes(code.bytes)
    if code.content_type == zxingcpp.ContentType.GS1:
        return raw.decode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return code.text


def _scan(img: Image.Image, *, exhaustive: bool, deadline: float | None = None,
          found: dict[str, tuple[Any, float]] | None = None, scale: float = 1.0) -> list[tuple[str, tuple[Any, float]]]:
    gray = img.convert("L")
    found = {} if found is None else found
    for variant, binarizer in _passes(gray):
        if deadline is not None and time.monotonic() > deadline:
            break  # out of time: answer with what the cheaper passes found
        unreadable = 0
        for code in zxingcpp.read_barcodes(variant, formats=_FORMATS, try_rotate=True, try_downscale=True,
                                           try_invert=True, binarizer=binarizer, return_errors=True):
            if not code.valid:
                unreadable += 1  # a symbol was seen but not decoded: later passes may read it
                continue
            content = _content(code)
            if content not in found:
                found[content] = (code, scale * variant.width / gray.width)  # back to the photo's pixels
        # Stop once a pass reads something and sees nothing it could not read.
        if found and not unreadable and not exhaustive:
            break
    return list(found.items())


def _position(code: Any, scale: float) -> str:
    pos = code.position
    points = [pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left]
    return " ".join(f"{round(p.x / scale)}x{round(p.y / scale)}" for p in points)


def _scan_bounded(img: Image.Image, limits: ImageLimits, *, exhaustive: bool) -> list[tuple[str, tuple[Any, float]]]:
    """Scan a downscaled copy first; the full-size image only if that found nothing and time is left."""
    deadline = time.monotonic() + limits.seconds
    longest = max(img.size)
    if longest <= limits.max_side:
        return _scan(img, exhaustive=exhaustive, deadline=deadline)
    factor = limits.max_side / longest
    small = img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))), Image.Resampling.BILINEAR)
    found: dict[str, tuple[Any, float]] = {}
    _scan(small, exhaustive=exhaustive, deadline=deadline, found=found, scale=factor)
    if not found and time.monotonic() < deadline:
        _scan(img, exhaustive=exhaustive, deadline=deadline, found=found)
    return list(found.items())


def decode_image(image: bytes | str | Path | Image.Image, *, exhaustive: bool = False,
                 limits: ImageLimits | None = None) -> list[Decoded]:
    """Every QR / DataMatrix code in the image, each with its canonical key or the reason it has none
    (``error`` names the code). Passes stop at the first one that reads at least one code and sees no symbol
    it could not read; ``exhaustive`` runs every pass and merges what each finds (slower, for photos where a
    code is not even detected until enhanced).
    ``limits`` bounds the work for an image from a stranger (see ImageLimits); without it the caps are the
    command line's (20 MiB, 40 megapixels) and every pass runs on the full image.
    Raises InvalidInput (code ``invalid_image`` / ``image_too_large``) when the image cannot be read."""
    out: list[Decoded] = []
    img = _open(image, limits)
    scanned = _scan(img, exhaustive=exhaustive) if limits is None else _scan_bounded(img, limits, exhaustive=exhaustive)
    for content, (code, scale) in scanned:
        fmt = _format_name(code.format)
        shown = printable(content)
        try:
            scanned = read_code(content)
            key, error, elements = scanned.key, None, scanned.elements
        except TrackerError as exc:
            key, error, elements = None, f"{fmt} {exc.message}", {}
        out.append(Decoded(text=shown, format=fmt, position=_position(code, scale), key=key, error=error,
                           elements=elements))
    # Reading order: top to bottom, left to right (rows of labels read like text).
    out.sort(key=lambda d: tuple(reversed([int(v) for v in d.position.split()[0].split("x")])))
    return out


def decode_keys(images: Iterable[bytes | str | Path | Image.Image]) -> list[str]:
    """The keys of every valid code in ``images``, in order, each once."""
    keys: list[str] = []
    for img in images:
        for d in decode_image(img):
            if d.key and d.key not in keys:
                keys.append(d.key)
    return keys
