"""Pillow thumbnails kept in a module list; pixel memory is Pillow's native allocation."""

from PIL import Image

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_pillow_thumbnails.py#image",
    "root": "_thumbnails",
}

_thumbnails: list[Image.Image] = []


def step(i: int) -> None:
    thumb = Image.new("RGB", (32, 32), (i % 256, 0, 0))  # leak-site: image
    _thumbnails.append(thumb)
