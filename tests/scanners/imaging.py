"""Degrading and photographing labels for decoder tests, with Pillow only (deterministic: seeded noise).

``photo`` composites labels onto a cardboard-like background with a perspective tilt, a shadow, uneven
light, blur, sensor noise and JPEG compression: what a phone photo of a box looks like to the decoder.
``fixtures/photos/generate.py`` uses it to make the committed photos.
"""
from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from typing import Sequence

import zxingcpp
from PIL import Image, ImageChops, ImageDraw, ImageFilter

__all__ = ["datamatrix", "on_background", "rotate", "scale", "blur", "noise", "low_contrast", "jpeg",
           "Placement", "photo"]


def datamatrix(content: str, *, gs1: bool = True, scale: int = 6) -> Image.Image:
    """A DataMatrix written by zxing-cpp. ``gs1``: ``content`` is a bracketed element string encoded with FNC1
    (a GS1 DataMatrix); otherwise the text as is."""
    options = {"gs1": True} if gs1 else {}
    symbol = zxingcpp.create_barcode(content, zxingcpp.BarcodeFormat.DataMatrix, **options)
    view = memoryview(symbol.to_image(scale=scale, add_quiet_zones=True))
    return Image.frombytes("L", (view.shape[1], view.shape[0]), view.tobytes())


def qr_text(content: str, *, scale: int = 6) -> Image.Image:
    """A plain QR code holding ``content`` (e.g. an element string typed into a label printer)."""
    symbol = zxingcpp.create_barcode(content, zxingcpp.BarcodeFormat.QRCode)
    view = memoryview(symbol.to_image(scale=scale, add_quiet_zones=True))
    return Image.frombytes("L", (view.shape[1], view.shape[0]), view.tobytes())


def on_background(img: Image.Image, *, size: tuple[int, int] = (900, 700), at: tuple[int, int] = (100, 80),
                  shade: int = 200) -> Image.Image:
    bg = Image.new("L", size, shade)
    bg.paste(img.convert("L"), at)
    return bg


def rotate(img: Image.Image, degrees: float, *, fill: int = 200) -> Image.Image:
    return img.convert("L").rotate(degrees, expand=True, fillcolor=fill, resample=Image.BICUBIC)


def scale(img: Image.Image, factor: float) -> Image.Image:
    return img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))), Image.LANCZOS)


def blur(img: Image.Image, radius: float) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius))


def noise(img: Image.Image, amplitude: int, *, seed: int = 1) -> Image.Image:
    """Add zero-mean noise of ±``amplitude`` grey levels (triangular: the sum of two uniform draws)."""
    rng = random.Random(seed)
    img = img.convert("L")
    n = img.width * img.height
    a = Image.frombytes("L", img.size, rng.randbytes(n))
    b = Image.frombytes("L", img.size, rng.randbytes(n))
    tri = ImageChops.add(a, b, scale=2.0)  # mean 127.5, triangular
    tri = tri.point(lambda v: max(0, min(255, 128 + round((v - 128) * amplitude / 64))))
    return ImageChops.add(img, tri, offset=-128)


def low_contrast(img: Image.Image, lo: int = 110, hi: int = 150) -> Image.Image:
    return img.convert("L").point(lambda v: lo + v * (hi - lo) // 255)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


# --- photographs -----------------------------------------------------------------------------------

def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (8x8: no numpy needed)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col])]
    return [m[i][n] / m[i][i] for i in range(n)]


def _perspective(dst: Sequence[tuple[float, float]], src: Sequence[tuple[float, float]]) -> list[float]:
    """PIL PERSPECTIVE coefficients mapping output points ``dst`` to input points ``src``."""
    a, b = [], []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        b.append(u)
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.append(v)
    return _solve(a, b)


@dataclass(frozen=True)
class Placement:
    """A label in the photo: centre, width in px, rotation (degrees) and tilt (0 = square on, 0.3 = the far
    edge 30 % shorter, as when the box is photographed at an angle)."""

    image: Image.Image
    center: tuple[float, float]
    width: float
    angle: float = 0.0
    tilt: float = 0.0


def _cardboard(size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    coarse = Image.frombytes("L", (w // 16 + 1, h // 16 + 1), rng.randbytes((w // 16 + 1) * (h // 16 + 1)))
    coarse = coarse.resize(size, Image.BICUBIC).filter(ImageFilter.GaussianBlur(6))
    fine = Image.frombytes("L", (w // 2, h // 2), rng.randbytes((w // 2) * (h // 2))).resize(size, Image.BILINEAR)
    texture = Image.blend(coarse, fine, 0.25).point(lambda v: 128 + (v - 128) // 5)
    base = Image.new("RGB", size, (186, 146, 98))
    draw = ImageDraw.Draw(base)
    x = 0
    while x < w:  # corrugation: faint vertical flutes
        shade = rng.randint(-10, 10)
        draw.line([(x, 0), (x, h)], fill=(186 + shade, 146 + shade, 98 + shade), width=rng.randint(6, 14))
        x += rng.randint(10, 18)
    base = base.filter(ImageFilter.GaussianBlur(2))
    texture_rgb = Image.merge("RGB", (texture, texture, texture))
    return ImageChops.add(base, texture_rgb, offset=-128)


def photo(placements: Sequence[Placement], *, size: tuple[int, int] = (1280, 960), seed: int = 7,
          blur_radius: float = 1.2, noise_amplitude: int = 6, quality: int = 70,
          light: float = 0.35) -> Image.Image:
    """A phone-photo-like RGB image of labels stuck on a cardboard box."""
    rng = random.Random(seed)
    canvas = _cardboard(size, rng)
    for p in placements:
        label = p.image.convert("RGB")
        label = ImageChops.multiply(label, Image.new("RGB", label.size, (250, 248, 240)))  # paper, not pure white
        lw, lh = label.size
        half_w, half_h = p.width / 2, p.width * lh / lw / 2
        far = 1.0 - p.tilt
        corners = [(-half_w * far, -half_h), (half_w * far, -half_h), (half_w, half_h), (-half_w, half_h)]
        t = math.radians(p.angle)
        quad = [(p.center[0] + x * math.cos(t) - y * math.sin(t), p.center[1] + x * math.sin(t) + y * math.cos(t))
                for x, y in corners]
        coeffs = _perspective(quad, [(0, 0), (lw, 0), (lw, lh), (0, lh)])
        warped = label.transform(size, Image.PERSPECTIVE, coeffs, Image.BICUBIC)
        mask = Image.new("L", label.size, 255).transform(size, Image.PERSPECTIVE, coeffs, Image.BILINEAR)
        shadow = mask.filter(ImageFilter.GaussianBlur(8)).point(lambda v: v * 2 // 5)
        shadow = ImageChops.offset(shadow, 6, 8)
        canvas = Image.composite(Image.new("RGB", size, (60, 45, 30)), canvas, shadow)
        canvas = Image.composite(warped, canvas, mask)
    # Uneven light: brighter towards one corner.
    gradient = Image.linear_gradient("L").rotate(rng.choice([30, 120, 210, 300]), fillcolor=128)
    gradient = gradient.filter(ImageFilter.GaussianBlur(24)).resize(size, Image.BICUBIC)
    gradient = gradient.point(lambda v: round(255 - light * (255 - v)))
    canvas = ImageChops.multiply(canvas, Image.merge("RGB", (gradient, gradient, gradient)))
    canvas = canvas.filter(ImageFilter.GaussianBlur(blur_radius))
    if noise_amplitude:
        channels = [noise(c, noise_amplitude, seed=seed + i) for i, c in enumerate(canvas.split())]
        canvas = Image.merge("RGB", channels)
    return jpeg(canvas, quality).convert("RGB")
