"""`kerasrnn mnist explain`: what the classifier believes after each row it reads.

The SavedModel's `rows` signature runs the recurrent cell over the 28 rows
and applies the model's own output layer to the state after each row: the
answer it would give had the digit ended there. For each digit the figure
shows the image, those 28 x 10 class probabilities, and the hidden state
over the rows.
"""

import numpy as np


def settled_after(probabilities):
    """The first row (1-28) from which the answer is the final one to the end."""
    answers = probabilities.argmax(axis=-1)
    row = len(answers)
    while row > 1 and answers[row - 2] == answers[-1]:
        row -= 1
    return row


def explain_figure(images, titles, probabilities, hidden, path):
    """One line per digit: image | probabilities after each row | hidden state."""
    from kerasrnn.apps.mnist.plot import plt, save_png  # Agg: headless

    count = len(images)
    fig, axes = plt.subplots(count, 3, figsize=(12, 3.2 * count), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.1, 3]})
    for row, (image, title, p, h) in enumerate(zip(images, titles, probabilities, hidden,
                                                   strict=True)):
        picture, belief, state = axes[row]
        picture.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        picture.set_title(title, fontsize=10)
        picture.set_xticks([])
        picture.set_ylabel("row")
        belief.imshow(p, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        belief.set_xticks(range(10))
        belief.set_xlabel("class")
        belief.set_title("P(class) after each row", fontsize=10)
        limit = float(np.abs(h).max()) or 1.0
        state.imshow(h, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        state.set_xlabel("unit")
        state.set_title("hidden state after each row", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=90)
