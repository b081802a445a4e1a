"""Decoding: labels and GS1 DataMatrix codes through the degradations a phone photo brings, bad codes named
clearly, the committed photos, and the `scanner decode` command."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner
from PIL import Image

from scanners.cli import cli
from scanners.decode import decode_image, read_code
from scanners.labels import render_png
from tracker.errors import InvalidIdentifier
from tracker.identifiers import ContainerKey, ItemKey

from . import imaging
from .conftest import GTIN, RESOLVER

PHOTOS = Path(__file__).resolve().parents[2] / "fixtures" / "photos"
SSCC = "095060000000000015"


def label(serial: str, box: int = 6) -> Image.Image:
    return render_png(ItemKey(gtin=GTIN, serial=serial), resolver=RESOLVER, box=box)


def keys(img: Image.Image) -> list[str | None]:
    return [d.key for d in decode_image(img)]


DEGRADATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "as printed": lambda img: imaging.on_background(img),
    "rotated 90": lambda img: imaging.rotate(imaging.on_background(img), 90),
    "rotated 45": lambda img: imaging.rotate(imaging.on_background(img), 45),
    "rotated 200": lambda img: imaging.rotate(imaging.on_background(img), 200),
    "small (2 px modules)": lambda img: imaging.scale(imaging.on_background(img), 1 / 3),
    "tiny (1.2 px modules)": lambda img: imaging.scale(imaging.on_background(img), 0.2),
    "gaussian blur 2.5": lambda img: imaging.blur(imaging.on_background(img), 2.5),
    "noise ±40": lambda img: imaging.noise(imaging.on_background(img), 40),
    "low contrast 115-145": lambda img: imaging.low_contrast(imaging.on_background(img), 115, 145),
    "jpeg quality 30": lambda img: imaging.jpeg(imaging.on_background(img), 30),
    "everything at once": lambda img: imaging.jpeg(imaging.noise(imaging.low_contrast(imaging.blur(
        imaging.rotate(imaging.on_background(img), 45), 1.5), 100, 170), 12), 30),
}


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_qr_label_round_trip(name: str) -> None:
    img = DEGRADATIONS[name](label("RT-" + name.split()[0].upper()))
    assert keys(img) == [f"01/{GTIN}/21/RT-{name.split()[0].upper()}"]


@pytest.mark.parametrize("name", ["as printed", "rotated 45", "small (2 px modules)", "gaussian blur 2.5",
                                  "low contrast 115-145", "jpeg quality 30"])
def test_gs1_datamatrix_round_trip(name: str) -> None:
    # zint's square-bracket GS1 syntax lets the serial itself hold round brackets.
    symbol = imaging.datamatrix("[01]09506000134352[17]271231[10]L2026-11[21]DM/7(A)", scale=6)
    (found,) = decode_image(DEGRADATIONS[name](symbol))
    # The serial holds '/' and brackets: only the FNC1 form is unambiguous, and that is what is read.
    assert found.format == "DataMatrix"
    assert found.key == f"01/{GTIN}/21/DM/7(A)"
    assert dict(found.elements) == {"17": "271231", "10": "L2026-11"}
    assert found.text == "01095060001343521727123110L2026-11<GS>21DM/7(A)"


def test_container_label_and_logistics_datamatrix() -> None:
    pallet = render_png(ContainerKey(sscc=SSCC), resolver=RESOLVER, box=5)
    assert keys(imaging.on_background(pallet)) == [f"00/{SSCC}"]
    sscc_dm = imaging.datamatrix(f"(00){SSCC}(02){GTIN}(37)24")
    (found,) = decode_image(imaging.on_background(sscc_dm))
    assert found.key == f"00/{SSCC}" and dict(found.elements) == {"02": GTIN, "37": "24"}


def test_several_labels_in_one_photo_each_read_once() -> None:
    serials = ["MULTI1", "MULTI2", "MULTI3", "MULTI4", "MULTI5"]
    placements = [imaging.Placement(label(s, box=5), (220 + 420 * (i % 3), 260 + 460 * (i // 3)), 300,
                                    angle=(-20, 0, 35, 90, 10)[i], tilt=0.1)
                  for i, s in enumerate(serials)]
    placements.append(imaging.Placement(imaging.datamatrix(f"(01){GTIN}(21)MULTI6", scale=7), (1060, 720), 200,
                                        angle=15))
    img = imaging.photo(placements, seed=3, quality=40)
    found = decode_image(img)
    assert sorted(d.key for d in found) == sorted(f"01/{GTIN}/21/{s}" for s in serials + ["MULTI6"])
    assert all(d.error is None for d in found)
    # Positions are in the photo's pixels: every code is where it was pasted.
    for d in found:
        x, y = (int(v) for v in d.position.split()[0].split("x"))
        assert 0 <= x < img.width and 0 <= y < img.height


@pytest.mark.parametrize("content, gs1, fragment", [
    ("(01)09506000134353(21)BAD1", True, "the check digit of GTIN 09506000134353 is wrong: the last digit should be 2"),
    ("(00)095060000000000016", True, "the check digit of SSCC 095060000000000016 is wrong: the last digit should be 5"),
    ("0109506000134352\x1d89X\x1d21BAD2", False, "unknown GS1 application identifier at '89X<GS>21BAD2'"),
    ("(01)09506000134352(89)X(21)BAD3", False, "unknown GS1 application identifier (89)"),
    ("(01)09506000134352(17)271341(21)BAD4", True, "(17)"),
    ("(01)09506000134352(10)L1", True, "no serial number"),
    ("hello, world", False, "not a GS1 code"),
])
def test_bad_codes_are_named_not_crashed(content: str, gs1: bool, fragment: str) -> None:
    try:
        symbol = imaging.datamatrix(content, gs1=gs1)
    except Exception:  # zint refuses to encode an impossible date: put it in a QR as text instead
        symbol = imaging.qr_text(content)
    (found,) = decode_image(imaging.on_background(symbol))
    assert found.key is None
    assert fragment in found.error
    # The error names the symbol and quotes its content (separators shown as <GS>).
    assert found.error.startswith(f"{found.format} {found.text!r}: ")


@pytest.mark.parametrize("text, key", [
    (f"https://id.example.com/01/{GTIN}/21/A%2FB", f"01/{GTIN}/21/A/B"),
    (f"https://other.example/01/{GTIN}/10/LOT9/21/S9?17=271231", f"01/{GTIN}/21/S9"),
    (f"(01){GTIN}(21)ABC123", f"01/{GTIN}/21/ABC123"),
    (f"01{GTIN} 21ABC123", f"01/{GTIN}/21/ABC123"),
    (f"]d201{GTIN}21ABC123", f"01/{GTIN}/21/ABC123"),
    ("0109506000134352\x1d10L1\x1d21X", f"01/{GTIN}/21/X"),
    (f"01/{GTIN}/21/ABC123", f"01/{GTIN}/21/ABC123"),
    (f"(00){SSCC}", f"00/{SSCC}"),
])
def test_typed_and_scanned_text_forms(text: str, key: str) -> None:
    assert read_code(text).key == key


@pytest.mark.parametrize("text, fragment", [
    ("", "empty code"),
    (f"https://id.example.com/01/{GTIN}", "no serial"),
    ("(01)09506000134352(21)", "(21)"),
    ("(01)9506000134352(21)GTIN13", "(01)"),  # an element string always carries 14 GTIN digits
    ("(01)09506000134352(21)TOO-LONG-SERIAL-1234567", "(21)"),
    (f"01/{GTIN}/21/has space", "serial"),
])
def test_read_code_errors_quote_the_code(text: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        read_code(text)
    assert fragment in info.value.message
    if text:
        assert info.value.message.startswith(repr(text)[:10])


def test_the_scanner_reads_with_the_core_parser() -> None:
    import tracker.identifiers

    assert read_code is tracker.identifiers.read_code


@pytest.mark.parametrize("content", [f"(01){GTIN}(21)AB(C)D", f"(01){GTIN}(21)AB(C)"])
def test_a_bracketed_serial_holding_brackets_is_refused_not_cut_short(content: str) -> None:
    # biip's bracketed reader returned serial "AB" for both: a handheld could sign for the wrong item.
    with pytest.raises(InvalidIdentifier, match="holds a bracket"):
        read_code(content)
    (found,) = decode_image(imaging.on_background(imaging.qr_text(content)))
    assert found.key is None and "holds a bracket" in found.error


def test_any_gs1_ai_beyond_the_key_is_data_in_a_scanned_symbol() -> None:
    symbol = imaging.datamatrix(f"(01){GTIN}(7003)2612311230(21)AI7003", scale=6)
    (found,) = decode_image(imaging.on_background(symbol))
    assert found.key == f"01/{GTIN}/21/AI7003" and dict(found.elements) == {"7003": "2612311230"}


def test_a_digital_link_qr_keeps_its_data_attributes() -> None:
    content = f"https://id.example.com/01/{GTIN}/10/L1/21/DL1?17=271231&linkType=all"
    (found,) = decode_image(imaging.on_background(imaging.qr_text(content)))
    assert found.key == f"01/{GTIN}/21/DL1" and dict(found.elements) == {"10": "L1", "17": "271231"}


def test_unreadable_image_is_an_error_not_a_crash(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    runner = CliRunner()
    result = runner.invoke(cli, ["decode", str(junk), str(tmp_path / "missing.png")])
    assert result.exit_code == 1
    assert f"error: {junk}: not a readable image" in result.stderr
    assert "missing.png: " in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.output


# --- committed photos ------------------------------------------------------------------------------

EXPECTED = json.loads((PHOTOS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_photos(name: str) -> None:
    path = PHOTOS / name
    assert path.stat().st_size < 200_000
    found = decode_image(path)
    expect = EXPECTED[name]
    assert sorted(d.key for d in found if d.key) == sorted(expect["keys"])
    errors = [d.error for d in found if d.error]
    assert len(errors) == len(expect["errors"])
    for fragment, error in zip(sorted(expect["errors"]), sorted(errors)):
        assert fragment in error
    if "elements" in expect:
        assert dict(found[0].elements) == expect["elements"]


def test_decode_command_prints_keys_and_names_bad_codes() -> None:
    runner = CliRunner()
    good = [str(PHOTOS / n) for n in ("box-label-tilted.jpg", "pallet-three-labels.jpg")]
    result = runner.invoke(cli, ["decode", *good])
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.split()) == sorted(EXPECTED["box-label-tilted.jpg"]["keys"]
                                                   + EXPECTED["pallet-three-labels.jpg"]["keys"])
    bad = runner.invoke(cli, ["decode", str(PHOTOS / "bad-check-digit.jpg")])
    assert bad.exit_code == 1
    assert bad.stdout.split() == [f"01/{GTIN}/21/PH006"]
    assert bad.stderr.strip() == (f"error: {PHOTOS / 'bad-check-digit.jpg'}: DataMatrix '010950600013435321PH007': "
                                  "the check digit of GTIN 09506000134353 is wrong: the last digit should be 2")


def test_decode_command_json_lines(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 200), 230).save(blank)
    photo = str(PHOTOS / "datamatrix-gs1-dim.jpg")
    result = CliRunner().invoke(cli, ["decode", "--json", photo, str(blank)])
    assert result.exit_code == 1  # the blank photo has no code
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["file"] == photo and rows[0]["format"] == "DataMatrix"
    assert rows[0]["key"] == f"01/{GTIN}/21/PH004" and rows[0]["error"] is None
    assert rows[0]["elements"] == {"17": "271231", "10": "L2026-11"}
    assert len(rows[0]["position"].split()) == 4
    assert rows[1] == {"file": str(blank), "format": None, "position": None, "text": None, "key": None,
                       "error": "no QR or DataMatrix code found"}


def test_many_images_show_progress(tmp_path: Path) -> None:
    paths = []
    for i in range(12):
        p = tmp_path / f"scan{i:02d}.png"
        imaging.on_background(label(f"P{i:02d}", box=3), size=(300, 300), at=(20, 20)).save(p)
        paths.append(str(p))
    result = CliRunner().invoke(cli, ["decode", *paths])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [f"01/{GTIN}/21/P{i:02d}" for i in range(12)]
    assert "decoding images" in result.stderr
