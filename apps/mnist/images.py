"""Image files as the model's input: 28x28 gray digits, white on black, 0-1."""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from kerasrnn.errors import UserError

# Larger images are refused before they are decoded: a digit needs no more,
# and Pillow would otherwise spend minutes and gigabytes on a 20000x20000 file.
MAX_PIXELS = 4096 * 4096

SAMPLES = Path(__file__).with_name("samples")  # real MNIST test digits, installed with kerasrnn


def sample_digits():
    """The sample digit files installed with kerasrnn, in name order."""
    return sorted(SAMPLES.glob("*.png"))


def _without_alpha(image, notes):
    """Composites a transparent image onto the background its ink needs.

    Transparent pixels are background. Light ink (a white digit on nothing)
    goes onto black, dark ink onto white, so that the border test that
    follows sees the background the author meant.
    """
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3]
    if alpha.min() >= 1.0:
        return image.convert("RGB")
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    ink = float((gray * alpha).sum() / max(alpha.sum(), 1e-6))
    background = 0.0 if ink > 0.5 else 1.0
    notes.append(f"transparent background taken as {'black' if background == 0 else 'white'}")
    composed = gray * alpha + background * (1 - alpha)
    return Image.fromarray(np.round(composed * 255).astype(np.uint8), mode="L")


def load_digit(path):
    """The image at `path` as a float32 `(28, 28)` array, and notes on what was changed.

    MNIST digits are light strokes on a dark background, 28x28, one channel.
    Other images are composited onto a background where transparent,
    converted to gray, resized, and inverted when their background (judged
    by the border pixels) is light; each change is noted.
    """
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise UserError(
                    f"{path}: {width}x{height} pixels is too large for a digit"
                    f" (at most {MAX_PIXELS:,} pixels); scale it down first"
                )
            image = opened.copy()
    except Image.DecompressionBombError:  # Pillow refuses to open far larger ones
        raise UserError(
            f"{path}: too large for a digit (at most {MAX_PIXELS:,} pixels); scale it down first"
        ) from None
    except (UnidentifiedImageError, OSError) as error:
        reason = "not an image" if isinstance(error, UnidentifiedImageError) else error
        raise UserError(f"{path}: cannot read it as an image ({reason})") from None
    notes = []
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        image = _without_alpha(image, notes)
    if image.mode != "L":
        if not has_alpha:
            notes.append(f"converted {image.mode} to grayscale")
        image = image.convert("L")
    if image.size != (28, 28):
        notes.append(f"resized {image.size[0]}x{image.size[1]} to 28x28")
        image = image.resize((28, 28), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 0.5:
        notes.append("inverted (light background)")
        pixels = 1.0 - pixels
    return pixels, notes
