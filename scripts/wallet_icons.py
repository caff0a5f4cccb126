"""Draws the wallet's app icons (api/static/wallet/icon-192.png, icon-512.png): a card on
blue, plain shapes (no font), so that they can be made again the same anywhere."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "api" / "static" / "wallet"


def icon(size: int) -> Image.Image:
    s = size / 512
    image = Image.new("RGB", (size, size), (21, 101, 192))
    draw = ImageDraw.Draw(image)
    # Maskable: everything that matters inside the central 80% circle.
    draw.rounded_rectangle([116 * s, 156 * s, 396 * s, 356 * s], radius=24 * s, fill=(255, 255, 255))
    draw.rectangle([116 * s, 196 * s, 396 * s, 226 * s], fill=(46, 125, 50))
    draw.rounded_rectangle([146 * s, 250 * s, 216 * s, 330 * s], radius=8 * s, fill=(144, 164, 174))
    for row in range(3):
        y = (262 + row * 24) * s
        draw.rectangle([236 * s, y, (366 - row * 30) * s, y + 10 * s], fill=(120, 144, 156))
    return image


if __name__ == "__main__":
    for size in (192, 512):
        icon(size).save(OUT / f"icon-{size}.png", optimize=True)
