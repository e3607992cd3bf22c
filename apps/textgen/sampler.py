"""Text from an ONNX or LiteRT file of the model's step, without TensorFlow.

`kerasrnn textgen export --format onnx|litert` writes the step
(`generation.StepModel`): a character and the state in, the next
character's logits and the new state out, and the vocabulary. This module
drives it: it reads the prompt one character at a time, then feeds back
each character it picks. The likeliest character at temperature 0, as the
SavedModel picks it; above 0, a draw from NumPy's generator seeded by
`seed`, so a seed gives the same text every time from the same file, but
not the SavedModel's text (TensorFlow draws with its own generator).

Nothing here imports TensorFlow or Keras.
"""

import numpy as np

from kerasrnn.apps.common import runtimes
from kerasrnn.errors import UserError


class StepFile:
    """A textgen step file on its runtime: `step(ids, state) -> (logits, state)`."""

    def __init__(self, path):
        self.model = runtimes.load(path)
        shape = self.model.input_shapes.get("state")
        if shape is None or len(shape) != 3 or "ids" not in self.model.input_shapes:
            raise UserError(f"{path}: not a textgen step file (`kerasrnn textgen export"
                            " --format` writes one)")
        self.state_shape = tuple(shape[1:])
        zero = np.zeros((1,), np.int32), np.zeros((1, *self.state_shape), np.float32)
        codes = self.model(ids=zero[0], state=zero[1])["characters"]
        self.vocab = [chr(int(code)) for code in codes]

    def step(self, ids, state):
        out = self.model(ids=np.asarray(ids, np.int32), state=state,
                         outputs=["logits", "new_state"])
        return out["logits"], out["new_state"]


def generate(step_file, prompt, length, temperature, seed, write):
    """Calls `write(text)` with the prompt, then with each character generated.

    Characters of the prompt the model never saw are skipped; an empty
    prompt starts from a newline, as the SavedModel does.
    """
    index = {ch: i for i, ch in enumerate(step_file.vocab)}
    ids = [index[ch] for ch in prompt if ch in index] or [index.get("\n", 0)]
    state = np.zeros((1, *step_file.state_shape), np.float32)
    write(prompt)
    for i in ids:
        logits, state = step_file.step([i], state)
    rng = np.random.default_rng(seed)
    for _ in range(length):
        if temperature > 0:
            scaled = logits[0].astype(np.float64) / temperature
            p = np.exp(scaled - scaled.max())
            next_id = int(rng.choice(len(p), p=p / p.sum()))
        else:
            next_id = int(np.argmax(logits[0]))
        write(step_file.vocab[next_id])
        logits, state = step_file.step([next_id], state)
