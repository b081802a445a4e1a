"""Images → item and container keys: QR codes and GS1 DataMatrix read with zxing-cpp, then read by the core's
one GS1 parser (:func:`tracker.identifiers.read_code`, re-exported here) to the SPEC §1 canonical keys. Errors
name the code that was bad; they never crash the caller.

Photos are read in several passes (as taken, contrast-stretched, enlarged when small, sharpened, other
binarizers) and the results merged, so one photo can yield several codes even when each is only readable
in some pass.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import zxingcpp
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from tracker.errors import InvalidInput, TrackerError
from tracker.identifiers import ScannedCode, printable, read_code

__all__ = ["Decoded", "ScannedCode", "ImageLimits", "decode_image", "decode_keys", "read_code", "printable",
           "MAX_IMAGE_BYTES", "UPLOAD_FORMATS"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # what a phone or browser sends; no exotic decoders
_FORMATS = zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.DataMatrix])
_FORMAT_NAMES = {"QRCode": "QRCode", "QR Code": "QRCode", "DataMatrix": "DataMatrix", "Data Matrix": "DataMatrix"}


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


# --- images → codes ---------------------------------------------------------------------------------

# --- images → codes --------------------------------------------------------------------------------

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
    except FileNotFoundError as exc:  # only a path gets here (bytes open from memory)
        raise InvalidInput(f"{image!s} does not exist", code="invalid_image") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"{image!s} is a directory, not an image", code="invalid_image") from exc
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
        big = stretched.resize((gray.width * factor, gray.height * factor), Image.Resampling.BICUBIC)
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
            code_read = read_code(content)
            key, error, elements = code_read.key, None, code_read.elements
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
