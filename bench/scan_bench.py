#!/usr/bin/env python3
"""CPU cost of the consumer photo upload (POST /scan) against hostile images, before and after the bounds.

Baseline, measured in the same run: ``decode_image`` without limits (what /scan did before: every pass on the
full image). Bounded: with the web's ImageLimits (byte and header pixel caps, JPEG decoded at reduced scale,
downscaled copy first, time budget). Goal: a 6300x6300 image is answered in under 1 s of CPU.

    .venv/bin/python bench/scan_bench.py
"""
from __future__ import annotations

import io
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from scanners.decode import ImageLimits, decode_image  # noqa: E402
from tracker.errors import TrackerError  # noqa: E402

GOAL_CPU_SECONDS = 1.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _images() -> dict[str, bytes]:
    blank = io.BytesIO()
    Image.new("1", (6300, 6300), 1).save(blank, "PNG", optimize=True)
    noise = io.BytesIO()
    Image.frombytes("RGB", (3000, 2200), os.urandom(3000 * 2200 * 3)).save(noise, "JPEG", quality=95)
    return {"blank PNG 6300x6300": blank.getvalue(), "noise JPEG 3000x2200": noise.getvalue()}


def _measure(data: bytes, limits: ImageLimits | None) -> tuple[float, float, str]:
    wall, cpu = time.perf_counter(), _cpu()
    try:
        answer = f"{len(decode_image(data, limits=limits))} codes"
    except TrackerError as exc:
        answer = exc.code
    return _cpu() - cpu, time.perf_counter() - wall, answer


def main() -> int:
    missed = 0
    print(f"{'image':<24} {'bytes':>9} {'baseline CPU s':>15} {'bounded CPU s':>14} {'ratio':>6}  answer   goal")
    for name, data in _images().items():
        base_cpu, _, _ = _measure(data, None)
        cpu, _, answer = _measure(data, ImageLimits())
        ok = cpu < GOAL_CPU_SECONDS or "6300" not in name
        missed += not ok
        print(f"{name:<24} {len(data):>9} {base_cpu:>15.2f} {cpu:>14.2f} {cpu / base_cpu:>6.2f}  {answer:<8} "
              f"{'PASS' if ok else 'MISS'}{'' if '6300' in name else ' (no goal)'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
