"""The prediction grid: test digits titled with their label and the model's guess."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: write PNG files, never open a window

import matplotlib.pyplot as plt  # noqa: E402


def prediction_grid(images, labels, predictions, rows, cols, path):
    """Writes a rows x cols grid of digits to `path` (PNG); wrong guesses in red.

    Each panel is titled `label=L, pred=P`. Returns the path written.
    """
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows), squeeze=False)
    for ax, image, label, pred in zip(axes.flat, images, labels, predictions, strict=False):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1 if image.max() <= 1 else 255)
        color = "black" if label == pred else "red"
        ax.set_title(f"label={label}, pred={pred}", color=color, fontsize=10)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return save_png(fig, path, dpi=100)


def save_png(fig, path, dpi):
    """Writes `fig` to `path` as a PNG and closes it; returns the path.

    Written beside it under another name, then renamed: an interrupted run
    leaves no half-written PNG.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    tmp.replace(path)
    return path
