"""Labels: what is printed (PNG, SVG, sheets) decodes back to the key it was made for, the readable text
says the same, and bad input is one clear line, never a traceback."""
from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from scanners.decode import decode_image
from scanners.labels import human_lines, label, parse_serials, render_sheet_pages, render_sheet_svg, render_svg
from tracker.errors import InvalidIdentifier
from tracker.identifiers import ContainerKey, ItemKey

from .conftest import GTIN, RESOLVER

SSCC = "095060000000000015"
SVG = "{http://www.w3.org/2000/svg}"


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(label, list(args), env=env or {"WAYBILL_RESOLVER": RESOLVER}, catch_exceptions=False)


def rasterize(group: ET.Element, px: int = 8) -> Image.Image:
    """Draw a label's QR path (unit squares 'Mx,yHx2Vy2Hxz', in modules) so the decoder can read it."""
    path = group.find(f"{SVG}path")
    squares = re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path.get("d"))
    size = max(int(v) for sq in squares for v in sq[2:4]) + 4
    img = Image.new("L", (size * px, size * px), 255)
    draw = ImageDraw.Draw(img)
    for x, y, x2, y2 in squares:
        draw.rectangle([int(x) * px, int(y) * px, int(x2) * px - 1, int(y2) * px - 1], fill=0)
    return img


def test_png_item_label(tmp_path: Path) -> None:
    out = tmp_path / "item.png"
    result = run(GTIN, "ABC/123", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}: {RESOLVER}/01/{GTIN}/21/ABC%2F123"
    img = Image.open(out)
    (found,) = decode_image(img)
    assert found.text == f"{RESOLVER}/01/{GTIN}/21/ABC%2F123"
    assert found.key == f"01/{GTIN}/21/ABC/123"
    # Text sits under the code: the strip below the QR is not blank.
    bottom = img.convert("L").crop((0, int(img.height * 0.8), img.width, img.height))
    assert bottom.getextrema()[0] < 100


def test_gtin13_is_padded_and_container_labels(tmp_path: Path) -> None:
    out = tmp_path / "item13.png"
    assert run("9506000134352", "X1", "--out", str(out)).exit_code == 0
    assert [d.key for d in decode_image(out)] == [f"01/{GTIN}/21/X1"]
    pallet = tmp_path / "pallet.png"
    result = run("--sscc", SSCC, "--out", str(pallet), "--resolver", "id.acme.example")
    assert result.exit_code == 0, result.output
    (found,) = decode_image(pallet)
    assert found.text == f"https://id.acme.example/00/{SSCC}" and found.key == f"00/{SSCC}"
    assert human_lines(ContainerKey(sscc=SSCC)) == [f"SSCC {SSCC}", f"(00){SSCC}"]


def test_svg_label_holds_the_code_and_the_readable_text(tmp_path: Path) -> None:
    out = tmp_path / "item.svg"
    assert run(GTIN, "SVG-1", "--out", str(out)).exit_code == 0
    root = ET.parse(out).getroot()
    assert root.get("width").endswith("mm")
    (group,) = root.iter(f"{SVG}g")
    assert group.get("data-key") == f"01/{GTIN}/21/SVG-1"
    assert [t.text for t in group.iter(f"{SVG}text")] == [f"GTIN {GTIN}", "SN SVG-1", f"(01){GTIN}(21)SVG-1"]
    assert [d.key for d in decode_image(rasterize(group))] == [f"01/{GTIN}/21/SVG-1"]
    # Special characters are escaped, not breaking the XML.
    doc = render_svg(ItemKey(gtin=GTIN, serial="A&B<C>"), resolver=RESOLVER)
    texts = [t.text for t in ET.fromstring(doc.split("\n", 1)[1]).iter(f"{SVG}text")]
    assert "SN A&B<C>" in texts


def test_pdf_sheet_for_a_batch(tmp_path: Path) -> None:
    out = tmp_path / "batch.pdf"
    result = run(GTIN, "--sheet", "--serials", "S001-S060", "--out", str(out), "--title", "Aurora L1")
    assert result.exit_code == 0, result.output
    assert "60 labels on 3 page(s)" in result.stdout
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 3
    assert b"/CCITTFaxDecode" in data  # lossless bilevel images: no JPEG blur on the modules
    # What is on the pages: every label of the batch, in order, readable.
    keys = [ItemKey(gtin=GTIN, serial=f"S{i:03d}") for i in range(1, 61)]
    pages = render_sheet_pages(keys, resolver=RESOLVER)
    assert len(pages) == 3 and pages[0].size == (2480, 3508)
    assert sorted(d.key for d in decode_image(pages[2])) == [f"01/{GTIN}/21/S{i:03d}" for i in range(57, 61)]
    first = decode_image(pages[0])
    assert sorted(d.key for d in first) == [f"01/{GTIN}/21/S{i:03d}" for i in range(1, 29)]


def test_svg_sheet_and_serials_file(tmp_path: Path) -> None:
    serials = tmp_path / "serials.txt"
    serials.write_text("# batch 7\nAB-7\n\nZZ9\nlot/1\n")
    out = tmp_path / "batch.svg"
    result = run(GTIN, "--sheet", "--serials-file", str(serials), "--out", str(out), "--grid", "2x2")
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    labels = [g for g in root.iter(f"{SVG}g") if g.get("class") == "label"]
    assert [g.get("data-key") for g in labels] == [f"01/{GTIN}/21/{s}" for s in ("AB-7", "ZZ9", "lot/1")]
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "page"]) == 1
    assert [d.key for d in decode_image(rasterize(labels[2]))] == [f"01/{GTIN}/21/lot/1"]
    doc = render_sheet_svg([ItemKey(gtin=GTIN, serial=f"P{i}") for i in range(9)], resolver=RESOLVER, grid=(2, 2))
    assert doc.count('class="page"') == 3


@pytest.mark.parametrize("spec, expected", [
    ("S001-S005", ["S001", "S002", "S003", "S004", "S005"]),
    ("A8-A11", ["A8", "A9", "A10", "A11"]),
    ("7-9,X1", ["7", "8", "9", "X1"]),
    ("AB-CD, Q-7", ["AB-CD", "Q-7"]),  # not ranges: literal serials with a dash
    ("LOT1-0001-LOT1-0003", ["LOT1-0001-LOT1-0003"]),
])
def test_serial_ranges_and_lists(spec: str, expected: list[str]) -> None:
    assert parse_serials(spec) == expected


@pytest.mark.parametrize("spec, fragment", [
    ("S010-S001", "runs backwards"),
    ("A1,A1", "listed twice"),
    ("A1,B 2", "GS1 AI-82"),
    ("S1-S20000", "longer than"),
])
def test_bad_serial_specs(spec: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier, match=re.escape(fragment)):
        parse_serials(spec)


@pytest.mark.parametrize("args, message", [
    ([GTIN[:-1] + "3", "S1", "--out", "x.png"],
     "the check digit of GTIN 09506000134353 is wrong: the last digit should be 2"),
    (["12345", "S1", "--out", "x.png"], "GTIN '12345' must be 8, 12, 13 or 14 digits"),
    ([GTIN, "has space", "--out", "x.png"], "serial 'has space' must be 1-20 characters"),
    ([GTIN, "S1", "--out", "x.jpg"], "a label is written as .png or .svg"),
    ([GTIN, "--sheet", "--serials", "S1-S3", "--out", "x.png"], "a sheet is written as .pdf or .svg"),
    ([GTIN, "--sheet", "--out", "x.pdf"], "--sheet needs --serials"),
    (["--sscc", "095060000000000016", "--out", "x.png"],
     "the check digit of SSCC 095060000000000016 is wrong: the last digit should be 5"),
    ([GTIN, "--out", "x.png"], "without a serial number"),
    (["--out", "x.png"], "give GTIN and SERIAL"),
    ([GTIN, "S1", "--out", "x.png", "--resolver", "ftp://nope"], "is not an http(s) URL"),
    ([GTIN, "--sheet", "--serials", "S1-S3", "--grid", "40x1", "--out", "x.pdf"], "1-12 columns"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    result = CliRunner().invoke(label, args, env={"WAYBILL_RESOLVER": RESOLVER})
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_tracker_label_plug_in(tmp_path: Path) -> None:
    """`tracker label` is the same command, loaded through the waybill.cli entry point."""
    out = tmp_path / "p.png"
    ok = subprocess.run([sys.executable, "-m", "tracker.cli", "label", GTIN, "PLUG1", "--out", str(out)],
                        capture_output=True, text=True, env={"WAYBILL_RESOLVER": RESOLVER, "PATH": "/usr/bin:/bin"},
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert [d.key for d in decode_image(out)] == [f"01/{GTIN}/21/PLUG1"]
    bad = subprocess.run([sys.executable, "-m", "tracker.cli", "label", "123", "S", "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "Error: GTIN '123' must be 8, 12, 13 or 14 digits"


@pytest.mark.parametrize("args, key", [
    ([f"(01){GTIN}(21)RE/PRINT"], f"01/{GTIN}/21/RE/PRINT"),
    ([f"GTIN {GTIN} SN REPRINT"], f"01/{GTIN}/21/REPRINT"),
    ([f"https://other.example/01/{GTIN}/10/L1/21/REPRINT?17=271231"], f"01/{GTIN}/21/REPRINT"),
    (["--sscc", "(00)095060000000000015"], "00/095060000000000015"),
    (["--sscc", "SSCC 095060000000000015"], "00/095060000000000015"),
])
def test_a_label_can_be_reprinted_from_any_code(tmp_path: Path, args: list[str], key: str) -> None:
    out = tmp_path / "r.png"
    result = CliRunner().invoke(label, [*args, "--out", str(out)], env={"WAYBILL_RESOLVER": RESOLVER})
    assert result.exit_code == 0, result.output
    assert [d.key for d in decode_image(out)] == [key]


def test_what_a_label_prints_reads_back_to_its_key() -> None:
    from tracker.identifiers import read_code

    for key in (ItemKey(gtin=GTIN, serial="A/B(C)%?"), ItemKey(gtin=GTIN, serial="PLAIN"),
                ContainerKey(sscc="095060000000000015")):
        assert read_code("\n".join(human_lines(key))).key == str(key)
