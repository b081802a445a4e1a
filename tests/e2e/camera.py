"""A fake camera for Chromium: ``--use-file-for-fake-video-capture`` plays a Y4M file in a loop. We write one
(YUV 4:2:0, a few identical frames) from any Pillow image, so no ffmpeg is needed."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

__all__ = ["write_y4m", "camera_frame"]


def camera_frame(label: Image.Image, *, size: tuple[int, int] = (640, 480), margin: int = 40) -> Image.Image:
    """``label`` centred on a white frame of ``size`` (scaled down to fit, keeping the QR modules crisp)."""
    frame = Image.new("RGB", size, "white")
    room = (size[0] - 2 * margin, size[1] - 2 * margin)
    scale = min(1.0, room[0] / label.width, room[1] / label.height)
    if scale < 1:
        label = label.resize((int(label.width * scale), int(label.height * scale)), Image.NEAREST)
    frame.paste(label.convert("RGB"), ((size[0] - label.width) // 2, (size[1] - label.height) // 2))
    return frame


def write_y4m(image: Image.Image, path: Path, *, frames: int = 5, fps: int = 10) -> Path:
    """Write ``image`` as a Y4M video (C420jpeg) of ``frames`` identical frames. Width and height must be even."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    if w % 2 or h % 2:
        raise ValueError("Y4M 4:2:0 needs even width and height")
    y, cb, cr = rgb.convert("YCbCr").split()
    half = (w // 2, h // 2)
    planes = y.tobytes() + cb.resize(half, Image.BILINEAR).tobytes() + cr.resize(half, Image.BILINEAR).tobytes()
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            fh.write(b"FRAME\n")
            fh.write(planes)
    return path
