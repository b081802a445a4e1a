"""The home page: paste a code (element string, Digital Link, canonical key) or upload a photo of a QR code."""
from __future__ import annotations

import io
import re

import pytest
import qrcode
from PIL import Image

from tests.web.conftest import GTIN, item_path
from tracker.identifiers import digital_link

SSCC = "009506000134352008"


def qr_png(*texts: str, size: int = 300) -> bytes:
    """One PNG holding a QR code per text, side by side on a white background."""
    codes = []
    for text in texts:
        qr = qrcode.QRCode(border=4, box_size=8)
        qr.add_data(text)
        qr.make(fit=True)
        codes.append(qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB").resize((size, size)))
    width = max(1, len(codes)) * (size + 40) + 40
    canvas = Image.new("RGB", (width, size + 80), "white")
    for i, img in enumerate(codes):
        canvas.paste(img, (40 + i * (size + 40), 40))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def csrf_token(client) -> str:
    html = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def upload(client, data: bytes | None, *, token: str | None = "auto", filename: str = "photo.png"):
    form: dict = {}
    if token == "auto":
        token = csrf_token(client)
    if token:
        form["csrf_token"] = token
    if data is not None:
        form["photo"] = (io.BytesIO(data), filename)
    return client.post("/scan", data=form, content_type="multipart/form-data")


def test_home_page_has_search_and_upload(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'action="/search"' in html and 'name="code"' in html
    assert 'action="/scan"' in html and 'enctype="multipart/form-data"' in html and 'type="file"' in html
    assert 'capture="environment"' in html and 'name="csrf_token"' in html


@pytest.mark.parametrize("code", [
    f"(01){GTIN}(21)GENW",
    f"01{GTIN}21GENW",
    f"]Q301{GTIN}21GENW",
    f"01{GTIN}10LOT1\x1d21GENW",
    f"01/{GTIN}/21/GENW",
    f"https://id.example.com/01/{GTIN}/21/GENW",
    f"https://id.example.com/some/prefix/01/{GTIN}/21/GENW?17=270101",
    f"  http://waybill.test/01/{GTIN[1:]}/21/GENW  ",
])
def test_search_redirects_to_the_item_page(client, code):
    response = client.get("/search", query_string={"code": code})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/01/{GTIN}/21/GENW")
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and 'id="verdict"' in page.get_data(as_text=True)


def test_search_keeps_reserved_characters_in_the_serial(client):
    link = digital_link(f"01/{GTIN}/21/A%2FB", resolver="https://x.test")
    response = client.get("/search", query_string={"code": link})
    assert response.status_code == 303
    assert client.get(response.headers["Location"]).status_code == 200


@pytest.mark.parametrize("code, expect", [
    ("", "not a valid product code"),
    ("hello world", "not a valid product code"),
    (f"(01){GTIN[:-1]}9(21)X", "not a valid product code"),
    ("https://example.com/not/a/link", "not a valid product code"),
    ("x" * 5000, "not a valid product code"),
])
def test_search_errors_are_friendly(client, code, expect):
    response = client.get("/search", query_string={"code": code})
    assert response.status_code == 400 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert expect in html and 'action="/search"' in html


def test_upload_one_code_redirects_to_the_item_page(client, world):
    key = world.items["held-by-customs"]
    response = upload(client, qr_png(digital_link(key, resolver="https://id.example.com")))
    assert response.status_code == 303
    gtin, serial = item_path(key)
    assert response.headers["Location"].endswith(f"/01/{gtin}/21/{serial}")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-verdict="suspicious"' in html


def test_upload_element_string_and_jpeg(client, world):
    gtin, serial = item_path(world.items["genuine-cross-border"])
    png = qr_png(f"]Q301{gtin}21{serial}")
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(jpeg, format="JPEG", quality=85)
    response = upload(client, jpeg.getvalue(), filename="IMG_0001.jpg")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/01/{gtin}/21/{serial}")


def test_upload_several_codes_lists_them(client, world):
    a, b = world.items["genuine-cross-border"], world.items["custody-gap"]
    response = upload(client, qr_png(digital_link(a, resolver="https://x.test"), digital_link(b, resolver="https://x.test")))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "We found 2 products" in html
    for key in (a, b):
        gtin, serial = item_path(key)
        assert f'href="/01/{gtin}/21/{serial}"' in html


def test_search_for_a_pallet_opens_its_own_page(client):
    """Cases and pallets have their own consumer page now: typing an SSCC leads there, not to an error."""
    for code in (f"(00){SSCC}", f"00{SSCC}", f"SSCC {SSCC}"):
        response = client.get("/search", query_string={"code": code})
        assert response.status_code == 303 and response.headers["Location"].endswith(f"/00/{SSCC}"), code


def test_upload_non_product_codes_are_explained(client):
    response = upload(client, qr_png("hello, world", f"https://x.test/00/{SSCC}"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "not a product code" in html and f'href="/00/{SSCC}"' in html and "A case or pallet" in html


def test_upload_without_a_code_is_a_friendly_message(client):
    blank = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(blank, format="PNG")
    response = upload(client, blank.getvalue())
    assert response.status_code == 422
    assert "could not find a code" in response.get_data(as_text=True)


def test_upload_not_an_image(client):
    response = upload(client, b"%PDF-1.4 definitely not an image", filename="x.pdf")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "could not read that photo" in response.get_data(as_text=True)


def test_upload_without_a_file(client):
    response = upload(client, None)
    assert response.status_code == 400
    assert "Choose or take a photo" in response.get_data(as_text=True)


def test_upload_needs_the_csrf_token(client, world):
    png = qr_png(digital_link(world.items["genuine-cross-border"], resolver="https://x.test"))
    for token in (None, "forged-token"):
        response = upload(client, png, token=token)
        assert response.status_code == 400 and response.mimetype == "text/html"
        assert 'data-code="csrf_failed"' in response.get_data(as_text=True)


def test_upload_too_large_is_a_friendly_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    response = upload(client, b"\x89PNG" + b"0" * 20_000)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "too large" in response.get_data(as_text=True)
