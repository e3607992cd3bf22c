"""Image files as the model's input: 28x28 gray digits, white on black, 0-1."""

import numpy as np
from PIL import Image, UnidentifiedImageError

from kerasrnn.training import UserError


def load_digit(path):
    """The image at `path` as a float32 `(28, 28)` array, and notes on what was changed.

    MNIST digits are light strokes on a dark background, 28x28, one channel.
    Other images are converted to gray, resized, and inverted when their
    background (judged by the border pixels) is light; each change is noted.
    """
    try:
        with Image.open(path) as opened:
            image = opened.copy()
    except (UnidentifiedImageError, OSError) as error:
        reason = "not an image" if isinstance(error, UnidentifiedImageError) else error
        raise UserError(f"{path}: cannot read it as an image ({reason})") from None
    notes = []
    if image.mode != "L":
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
