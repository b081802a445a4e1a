"""QR labels: a GS1 Digital Link for an item (``{resolver}/01/{gtin14}/21/{serial}``) or a container
(``{resolver}/00/{sscc}``) with the human-readable text under the code, as PNG or SVG, and printable
sheets (multi-page PDF or SVG) for a whole commissioned batch.

The ``label`` click command plugs into ``tracker`` (entry point ``waybill.cli``) and ``scanner``.
Bad input (GTIN check digit, serial characters, file extension, serial range) is a one-line
``Error: ...`` and exit code 2, never a traceback.
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Sequence
from xml.sax.saxutils import escape

import click
import qrcode
import qrcode.image.svg
from PIL import Image, ImageDraw, ImageFont

from tracker.config import load_config
from tracker.errors import InvalidIdentifier, TrackerError
from tracker.identifiers import ContainerKey, ItemKey, digital_link, read_code, validate_serial

__all__ = [
    "LabelKey",
    "label_url",
    "human_lines",
    "normalize_resolver",
    "parse_serials",
    "render_png",
    "render_svg",
    "render_sheet_pages",
    "render_sheet_svg",
    "save_sheet_pdf",
    "label",
]

LabelKey = ItemKey | ContainerKey

# A4 at 300 dpi: the sheet is rendered at print resolution so the PDF needs no scaling.
DPI = 300
A4_PX = (2480, 3508)
A4_MM = (210.0, 297.0)
MAX_SHEET_LABELS = 10_000
_EC = qrcode.constants.ERROR_CORRECT_M
_FONT_NAMES = ("DejaVuSansMono.ttf", "DejaVuSans.ttf", "LiberationMono-Regular.ttf")


class LabelError(click.ClickException):
    """A one-line user error (exit 2): what was wrong and what to do."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


def normalize_resolver(resolver: str) -> str:
    """``id.example.com`` or ``https://id.example.com/`` → ``https://id.example.com`` (no trailing slash)."""
    resolver = (resolver or "").strip().rstrip("/")
    if not resolver:
        raise InvalidIdentifier("the resolver is empty: give --resolver https://host", field="resolver")
    if "://" not in resolver:
        resolver = "https://" + resolver
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", resolver):
        raise InvalidIdentifier(f"resolver {resolver!r} is not an http(s) URL like https://id.example.com",
                                field="resolver")
    return resolver


def label_url(key: LabelKey, *, resolver: str) -> str:
    """The QR content: the key's GS1 Digital Link under ``resolver``."""
    return digital_link(key, resolver=normalize_resolver(resolver))


def human_lines(key: LabelKey) -> list[str]:
    """The text printed under the code: the identifiers, then the GS1 element string."""
    if isinstance(key, ItemKey):
        return [f"GTIN {key.gtin}", f"SN {key.serial}", f"(01){key.gtin}(21){key.serial}"]
    return [f"SSCC {key.sscc}", f"(00){key.sscc}"]


def _qr(data: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=_EC, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in _FONT_NAMES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _fit_font(lines: Sequence[str], width: int, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The largest font up to ``size`` px in which every line fits ``width`` px."""
    while size > 8:
        font = _font(size)
        if all(font.getlength(line) <= width for line in lines):
            return font
        size -= 1
    return _font(8)


def _qr_image(data: str, box: int) -> Image.Image:
    qr = _qr(data)
    matrix = qr.get_matrix()  # includes the 4-module quiet zone
    n = len(matrix)
    img = Image.new("L", (n, n), 255)
    img.putdata([0 if cell else 255 for row in matrix for cell in row])
    return img.resize((n * box, n * box), Image.Resampling.NEAREST)


def _draw_label(canvas: Image.Image, key: LabelKey, *, resolver: str, origin: tuple[int, int],
                size: tuple[int, int]) -> None:
    """Draw one label (QR centred at the top, text lines below) into the box ``origin``+``size``."""
    x0, y0 = origin
    w, h = size
    lines = human_lines(key)
    font_px = max(10, min(42, w // 18))
    line_h = int(font_px * 1.25)
    text_h = line_h * len(lines) + font_px // 2
    data = label_url(key, resolver=resolver)
    modules = len(_qr(data).get_matrix())
    box = max(1, min(w, h - text_h) // modules)
    qr = _qr_image(data, box)
    qx = x0 + (w - qr.width) // 2
    canvas.paste(qr, (qx, y0))
    font = _fit_font(lines, w - 2 * box, font_px)
    draw = ImageDraw.Draw(canvas)
    y = y0 + qr.height
    for line in lines:
        tw = font.getlength(line)
        draw.text((x0 + (w - tw) / 2, y), line, fill=0, font=font)
        y += line_h


def render_png(key: LabelKey, *, resolver: str, box: int = 10) -> Image.Image:
    """One label as a grayscale image: QR with ``box`` px per module, text under it."""
    data = label_url(key, resolver=resolver)
    modules = len(_qr(data).get_matrix())
    w = modules * box
    lines = human_lines(key)
    font_px = max(12, w // 16)
    # Wide enough for the longest text line at a readable size.
    w = max(w, int(_font(font_px).getlength(max(lines, key=len))) + 4 * box)
    h = modules * box + int(font_px * 1.25) * len(lines) + font_px
    img = Image.new("L", (w, h), 255)
    _draw_label(img, key, resolver=resolver, origin=(0, 0), size=(w, h))
    return img


def _svg_qr_path(data: str) -> tuple[str, int]:
    """The QR as one SVG path (unit = one module, quiet zone included) and its size in modules."""
    qr = _qr(data)
    img = qr.make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return img.path.get("d"), len(qr.get_matrix())


def _svg_label_group(key: LabelKey, *, resolver: str, x: float, y: float, width: float) -> tuple[str, float]:
    """An SVG ``<g>`` (mm units) for one label at (x, y), ``width`` mm wide; returns it and its height."""
    d, modules = _svg_qr_path(label_url(key, resolver=resolver))
    scale = width / modules
    lines = human_lines(key)
    longest = max(len(line) for line in lines)
    # Monospace glyphs are ~0.6 em wide: size the text so the longest line fits the label.
    font_mm = min(width / 12.0, (width * 0.95) / (0.6 * longest))
    out = [f'<g class="label" data-key="{escape(str(key))}" transform="translate({x:.3f},{y:.3f})">',
           f'<path transform="scale({scale:.5f})" d="{d}" fill="#000"/>']
    ty = width + font_mm * 0.2
    for line in lines:
        ty += font_mm * 1.2
        out.append(f'<text x="{width / 2:.3f}" y="{ty:.3f}" font-family="DejaVu Sans Mono, monospace" '
                   f'font-size="{font_mm:.3f}" text-anchor="middle" fill="#000">{escape(line)}</text>')
    out.append("</g>")
    return "".join(out), ty + font_mm * 0.6


def render_svg(key: LabelKey, *, resolver: str, width_mm: float = 40.0) -> str:
    """One label as a standalone SVG document (sizes in mm)."""
    group, height = _svg_label_group(key, resolver=resolver, x=0, y=0, width=width_mm)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width_mm:.3f}mm" '
            f'height="{height:.3f}mm" viewBox="0 0 {width_mm:.3f} {height:.3f}">'
            f'<rect width="100%" height="100%" fill="#fff"/>{group}</svg>\n')


def _grid(grid: tuple[int, int]) -> tuple[int, int]:
    cols, rows = grid
    if not (1 <= cols <= 12 and 1 <= rows <= 20):
        raise InvalidIdentifier("the grid must be 1-12 columns by 1-20 rows, e.g. 4x7", field="grid")
    return cols, rows


def render_sheet_pages(keys: Sequence[LabelKey], *, resolver: str, grid: tuple[int, int] = (4, 7),
                       title: str | None = None, progress: Callable[[int], None] | None = None) -> list[Image.Image]:
    """A4 pages at 300 dpi (mode ``1``: crisp modules, lossless CCITT in the PDF) of ``cols x rows`` labels."""
    cols, rows = _grid(grid)
    if not keys:
        raise InvalidIdentifier("no labels to print", field="serials")
    margin, footer = 118, 70  # 10 mm margins, a footer line
    page_w, page_h = A4_PX
    cell_w = (page_w - 2 * margin) // cols
    cell_h = (page_h - 2 * margin - footer) // rows
    pad = 24
    per_page = cols * rows
    pages = []
    total = (len(keys) + per_page - 1) // per_page
    font = _font(30)
    for p in range(total):
        page = Image.new("L", A4_PX, 255)
        draw = ImageDraw.Draw(page)
        chunk = keys[p * per_page:(p + 1) * per_page]
        for i, key in enumerate(chunk):
            cx = margin + (i % cols) * cell_w
            cy = margin + (i // cols) * cell_h
            _draw_label(page, key, resolver=resolver, origin=(cx + pad, cy + pad),
                        size=(cell_w - 2 * pad, cell_h - 2 * pad))
            for dx, dy in ((0, 0), (cell_w, 0), (0, cell_h), (cell_w, cell_h)):  # crop marks
                draw.line([(cx + dx - 12, cy + dy), (cx + dx + 12, cy + dy)], fill=0, width=2)
                draw.line([(cx + dx, cy + dy - 12), (cx + dx, cy + dy + 12)], fill=0, width=2)
        first, last = human_lines(chunk[0])[-1], human_lines(chunk[-1])[-1]
        text = f"{title + ' - ' if title else ''}{first} ... {last}    page {p + 1}/{total}"
        draw.text((margin, page_h - margin - footer // 2), text, fill=0, font=font)
        pages.append(page.point(lambda v: 255 if v >= 128 else 0, mode="1"))
        if progress is not None:
            progress(1)
    return pages


def save_sheet_pdf(pages: Sequence[Image.Image], out: str | Path | io.BytesIO) -> None:
    pages[0].save(out, format="PDF", save_all=True, append_images=list(pages[1:]), resolution=float(DPI))


def render_sheet_svg(keys: Sequence[LabelKey], *, resolver: str, grid: tuple[int, int] = (4, 7),
                     title: str | None = None) -> str:
    """The same sheet as one SVG: A4 pages (mm units) stacked top to bottom, one ``<g class="page">`` each."""
    cols, rows = _grid(grid)
    if not keys:
        raise InvalidIdentifier("no labels to print", field="serials")
    margin, footer = 10.0, 6.0
    page_w, page_h = A4_MM
    cell_w = (page_w - 2 * margin) / cols
    cell_h = (page_h - 2 * margin - footer) / rows
    per_page = cols * rows
    total = (len(keys) + per_page - 1) // per_page
    parts = []
    for p in range(total):
        chunk = keys[p * per_page:(p + 1) * per_page]
        parts.append(f'<g class="page" transform="translate(0,{p * page_h:.3f})">'
                     f'<rect width="{page_w}" height="{page_h}" fill="#fff" stroke="#ccc" stroke-width="0.2"/>')
        for i, key in enumerate(chunk):
            x = margin + (i % cols) * cell_w
            y = margin + (i // cols) * cell_h
            # The label is as wide as the cell allows while its text still fits under the code.
            width = min(cell_w - 4, (cell_h - 4) / 1.45)
            group, _ = _svg_label_group(key, resolver=resolver, x=x + (cell_w - width) / 2, y=y + 2, width=width)
            parts.append(group)
        first, last = human_lines(chunk[0])[-1], human_lines(chunk[-1])[-1]
        text = f"{title + ' - ' if title else ''}{first} ... {last}    page {p + 1}/{total}"
        parts.append(f'<text x="{margin}" y="{page_h - margin:.3f}" font-family="DejaVu Sans, sans-serif" '
                     f'font-size="3" fill="#000">{escape(text)}</text></g>')
    height = total * page_h
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{page_w}mm" height="{height}mm" '
            f'viewBox="0 0 {page_w} {height}">{"".join(parts)}</svg>\n')


# --- serial lists ----------------------------------------------------------------------------------

_RANGE_END = re.compile(r"^(.*?)(\d+)$")


def _expand(token: str) -> list[str]:
    """``S001-S120`` → S001..S120 (zero padding kept when both ends have the same width); anything else is one
    literal serial. A dash is a range only when both sides are the same prefix followed by digits, so serials
    that contain a dash (``AB-7``) still work as literals."""
    if token.count("-") == 1:
        lo, hi = token.split("-")
        mlo, mhi = _RANGE_END.match(lo), _RANGE_END.match(hi)
        if mlo and mhi and mlo.group(1) == mhi.group(1):
            prefix, a, b = mlo.group(1), int(mlo.group(2)), int(mhi.group(2))
            if b < a:
                raise InvalidIdentifier(f"serial range {token!r} runs backwards (a literal serial with a dash "
                                        "goes in --serials-file)", field="serials")
            if b - a + 1 > MAX_SHEET_LABELS:
                raise InvalidIdentifier(f"serial range {token!r} is longer than {MAX_SHEET_LABELS} labels",
                                        field="serials")
            width = len(mlo.group(2)) if len(mlo.group(2)) == len(mhi.group(2)) else 0
            return [f"{prefix}{n:0{width}d}" for n in range(a, b + 1)]
    return [token]


def parse_serials(spec: str | None = None, lines: Iterable[str] = ()) -> list[str]:
    """Serials from ``spec`` (comma-separated serials and ``A001-A120`` ranges) and ``lines`` (one literal serial
    per line; ``#`` comments and blank lines skipped). Each is checked against GS1 AI-82; order is kept and a
    serial listed twice is refused."""
    serials: list[str] = []
    for token in (spec or "").split(","):
        token = token.strip()
        if token:
            serials.extend(_expand(token))
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            serials.append(line)
    seen: set[str] = set()
    for s in serials:
        validate_serial(s)
        if s in seen:
            raise InvalidIdentifier(f"serial {s!r} is listed twice", field="serials")
        seen.add(s)
    if len(serials) > MAX_SHEET_LABELS:
        raise InvalidIdentifier(f"at most {MAX_SHEET_LABELS} labels per sheet", field="serials")
    return serials


# --- command ---------------------------------------------------------------------------------------

def _parse_grid(value: str) -> tuple[int, int]:
    m = re.match(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$", value or "")
    if not m:
        raise InvalidIdentifier(f"--grid {value!r} is not COLSxROWS like 4x7", field="grid")
    return _grid((int(m.group(1)), int(m.group(2))))


@click.command("label")
@click.argument("gtin", required=False)
@click.argument("serial", required=False)
@click.option("--sscc", help="Label a container (case, pallet) with this 18-digit SSCC instead of an item.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Output file: .png or .svg for one label; .pdf or .svg with --sheet.")
@click.option("--resolver", help="Digital Link host, e.g. https://id.example.com (default: the configured resolver, "
                                 "WAYBILL_RESOLVER).")
@click.option("--sheet", is_flag=True, help="Print a sheet of labels for GTIN and every serial of --serials/"
                                            "--serials-file (A4, multi-page PDF or SVG).")
@click.option("--serials", help="With --sheet: serials as a comma list and/or ranges, e.g. S001-S120 or A1,A2,B7-B9.")
@click.option("--serials-file", type=click.File("r"), help="With --sheet: a file with one serial per line, taken "
                                                          "literally ('-' for stdin).")
@click.option("--grid", default="4x7", show_default=True, help="With --sheet: labels per page, COLSxROWS.")
@click.option("--title", help="With --sheet: a title printed in each page's footer, e.g. the product name and lot.")
@click.option("--scale", default=10, show_default=True, type=click.IntRange(2, 40),
              help="PNG: pixels per QR module.")
def label(gtin: str | None, serial: str | None, sscc: str | None, out: str, resolver: str | None, sheet: bool,
          serials: str | None, serials_file: IO[str] | None, grid: str, title: str | None, scale: int) -> None:
    """Make a QR label (GS1 Digital Link + readable text) for an item, a container or a whole batch.
    GTIN may instead be any code to reprint (a Digital Link, (01)…(21)…, what a label prints).

    \b
      label 09506000134352 ABC123 --out abc123.png
      label '(01)09506000134352(21)ABC123' --out abc123.svg
      label --sscc 095060000000000001 --out pallet.svg
      label 09506000134352 --sheet --serials S001-S120 --out batch.pdf
    """
    try:
        _label(gtin, serial, sscc, out, resolver, sheet, serials, serials_file, grid, title, scale)
    except TrackerError as exc:
        raise LabelError(str(exc)) from None
    except OSError as exc:
        raise LabelError(f"cannot write {out}: {exc.strerror or exc}") from None


def _label(gtin: str | None, serial: str | None, sscc: str | None, out: str, resolver: str | None, sheet: bool,
           serials: str | None, serials_file: IO[str] | None, grid: str, title: str | None, scale: int) -> None:
    ext = Path(out).suffix.lower()
    resolver = normalize_resolver(resolver or load_config().resolver)
    if sheet:
        if ext not in (".pdf", ".svg"):
            raise LabelError(f"--out {out}: a sheet is written as .pdf or .svg")
        if sscc or not gtin:
            raise LabelError("--sheet needs a GTIN and --serials or --serials-file (SSCC sheets are not supported)")
        if serial:
            raise LabelError("--sheet takes its serials from --serials/--serials-file, not a SERIAL argument")
        if not serials and serials_file is None:
            raise LabelError("--sheet needs --serials (e.g. S001-S120) or --serials-file")
        keys = [ItemKey(gtin=gtin, serial=s)
                for s in parse_serials(serials, serials_file if serials_file is not None else ())]
        cols_rows = _parse_grid(grid)
        if ext == ".pdf":
            per_page = cols_rows[0] * cols_rows[1]
            with click.progressbar(length=(len(keys) + per_page - 1) // per_page, label="rendering pages",
                                   file=sys.stderr) as bar:
                pages = render_sheet_pages(keys, resolver=resolver, grid=cols_rows, title=title, progress=bar.update)
            save_sheet_pdf(pages, out)
            click.echo(f"wrote {out}: {len(keys)} labels on {len(pages)} page(s)")
        else:
            Path(out).write_text(render_sheet_svg(keys, resolver=resolver, grid=cols_rows, title=title))
            click.echo(f"wrote {out}: {len(keys)} labels")
        return
    if ext not in (".png", ".svg"):
        raise LabelError(f"--out {out}: a label is written as .png or .svg (use --sheet for .pdf)")
    if serials or serials_file is not None:
        raise LabelError("--serials/--serials-file need --sheet")
    key: LabelKey
    if sscc:
        if gtin or serial:
            raise LabelError("give either --sscc SSCC or GTIN SERIAL, not both")
        unit = read_code(sscc).unit  # 18 digits, "SSCC …", "(00)…" or a link: the one parser reads them all
        if not isinstance(unit, ContainerKey):
            raise LabelError(f"--sscc {sscc!r} is not a shipping unit (SSCC) code")
        key = unit
    elif not gtin:
        raise LabelError("give GTIN and SERIAL (e.g. 09506000134352 ABC123), a code to reprint, or --sscc SSCC")
    elif serial is None:
        key = read_code(gtin).unit  # a code to reprint: a link, (01)…(21)…, what a label prints
    else:
        key = ItemKey(gtin=gtin.strip(), serial=serial)
    if ext == ".png":
        render_png(key, resolver=resolver, box=scale).save(out, format="PNG", optimize=True)
    else:
        Path(out).write_text(render_svg(key, resolver=resolver))
    click.echo(f"wrote {out}: {label_url(key, resolver=resolver)}")
