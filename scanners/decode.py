"""Images → item and container keys: QR codes and GS1 DataMatrix read with zxing-cpp, then normalised
by the core's GS1 parser. Errors name the code that was bad; they never crash the caller."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Iterable

import zxingcpp
from PIL import Image, ImageOps, UnidentifiedImageError

from tracker.errors import InvalidInput, TrackerError
from tracker.identifiers import parse_code

__all__ = ["Decoded", "decode_image", "MAX_IMAGE_BYTES"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_FORMATS = zxingcpp.BarcodeFormat.QRCode | zxingcpp.BarcodeFormat.DataMatrix


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoded:
    text: str
    format: str
    position: str
    key: str | None  # canonical key, or None when the code is not a valid GS1 item/container code
    error: str | None = None


def _open(image: bytes | str | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    try:
        if isinstance(image, (bytes, bytearray)):
            if len(image) > MAX_IMAGE_BYTES:
                raise InvalidInput(f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB", code="image_too_large")
            img = Image.open(io.BytesIO(image))
        else:
            img = Image.open(image)
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidInput("not a readable image (PNG, JPEG, ...)", code="invalid_image") from exc
    return ImageOps.exif_transpose(img)


def _read(img: Image.Image) -> list:
    gray = img.convert("L")
    found = zxingcpp.read_barcodes(gray, formats=_FORMATS, try_rotate=True, try_downscale=True)
    if not found:
        # Small or low-contrast codes: upscale and stretch contrast, then try again.
        boosted = ImageOps.autocontrast(gray)
        if max(boosted.size) < 1600:
            boosted = boosted.resize((boosted.width * 2, boosted.height * 2), Image.LANCZOS)
        found = zxingcpp.read_barcodes(boosted, formats=_FORMATS, try_rotate=True, try_downscale=True)
    return found


def decode_image(image: bytes | str | Image.Image) -> list[Decoded]:
    """Every QR / DataMatrix code in the image, each with its canonical key or the reason it has none."""
    out: list[Decoded] = []
    seen: set[str] = set()
    for code in _read(_open(image)):
        text = code.text
        if text in seen:
            continue
        seen.add(text)
        try:
            key, error = str(parse_code(text)), None
        except TrackerError as exc:
            key, error = None, f"{text!r}: {exc}"
        out.append(Decoded(text=text, format=str(code.format), position=str(code.position), key=key, error=error))
    return out


def decode_keys(images: Iterable[bytes | str]) -> list[str]:
    return [d.key for img in images for d in decode_image(img) if d.key]
