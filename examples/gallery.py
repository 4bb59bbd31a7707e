"""Rebuild the README's gallery: run every example, keep small copies of its PNGs in docs/gallery.

The copies are 8-bit palette PNGs (about a third of the size, each under 200 KB); the examples
themselves write full-colour images. Run from the repository root:
``python examples/gallery.py``.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from PIL import Image

EXAMPLES = [
    "network_digits", "backprop_digits", "cost_surface_line", "history_variants",
    "decision_boundary_moons", "gradient_norms", "loss_landscape", "local_minima",
]  # fmt: skip
LIMIT = 200_000


def compact(src: Path, dst: Path) -> int:
    """Write ``src`` as a palette PNG at ``dst``; return its size in bytes."""
    image = Image.open(src).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        dst, optimize=True
    )
    return dst.stat().st_size


def main(gallery: Path = Path("docs/gallery")) -> dict[str, int]:
    here = Path(__file__).parent
    gallery.mkdir(parents=True, exist_ok=True)
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in EXAMPLES:
            spec = importlib.util.spec_from_file_location(name, here / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for path in module.main(Path(tmp)):
                if path.suffix == ".png":
                    sizes[path.name] = compact(path, gallery / path.name)
    too_big = {k: v for k, v in sizes.items() if v > LIMIT}
    if too_big:
        sys.exit(f"over {LIMIT} bytes: {too_big}")
    return sizes


if __name__ == "__main__":
    for name, size in main().items():
        print(f"docs/gallery/{name}: {size / 1000:.0f} KB")
