"""Pillow images created, resized and encoded per request, then dropped."""

import io

from PIL import Image

EXPECTED = {"leak": False}


def step(i: int) -> None:
    img = Image.new("RGB", (128, 128), (i % 256, 10, 10))
    img.resize((48, 48)).save(io.BytesIO(), format="PNG")
