"""Text generation inside the TensorFlow graph, and the SavedModel that serves it.

TF Serving runs one graph per request and keeps no state between requests,
so `serving_default` does the whole job in one call: it reads the prompt,
then samples `length` characters in a `tf.while_loop`, feeding each one back.
No lookup tables: characters become Unicode code points
(`tf.strings.unicode_decode`) and a small dense array maps code points to
ids, -1 for characters outside the vocabulary, which are skipped.

The `step` signature exposes one stretch of the model with the recurrent
state passed in and out explicitly, for clients that stream.
"""

import keras
import numpy as np
import tensorflow as tf

from kerasrnn.apps.textgen.model import recurrent_cells
from kerasrnn.export import DEFAULT_BASE_DIR, export_version

MODEL_NAME = "textgen"


class Generator:
    """Runs a trained character model step by step, in graph-friendly ops."""

    def __init__(self, model, vocab):
        self.model = model
        self.vocab = list(vocab)
        self.embedding, self.cells, self.head = recurrent_cells(model)
        codes = np.array([ord(ch) for ch in self.vocab], dtype=np.int32)
        code_to_id = np.full(codes.max() + 1, -1, dtype=np.int32)
        code_to_id[codes] = np.arange(len(codes), dtype=np.int32)
        self.codes = tf.constant(codes)
        self.code_to_id = tf.constant(code_to_id)
        self.newline_id = self.vocab.index("\n") if "\n" in self.vocab else 0
        # One [batch, units] tensor per state: LSTM cells hold two (h, c).
        self.state_sizes = []
        for cell in self.cells:
            sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
            self.state_sizes.extend(sizes)
        self.units = max(self.state_sizes)

    def zero_state(self, batch):
        return tf.zeros([batch, len(self.state_sizes), self.units], tf.float32)

    def _step(self, ids, state):
        """One character per row: ids [batch] -> logits [batch, vocab], next state."""
        x = self.embedding(ids)
        flat = tf.unstack(state, axis=1)
        new_states, k = [], 0
        for cell in self.cells:
            n = len(cell.state_size) if isinstance(cell.state_size, list) else 1
            x, states = cell(x, flat[k : k + n], training=False)
            new_states.extend(states if isinstance(states, (list, tuple)) else [states])
            k += n
        return self.head(x), tf.stack(new_states, axis=1)

    def step(self, ids, state):
        """`ids` [batch, t] and `state` [batch, S, units] -> logits [batch, t, vocab], state."""
        steps = tf.shape(ids)[1]
        logits = tf.TensorArray(tf.float32, size=steps)

        def body(t, state, logits):
            out, state = self._step(ids[:, t], state)
            return t + 1, state, logits.write(t, out)

        _, state, logits = tf.while_loop(
            lambda t, *_: t < steps, body, [tf.constant(0), state, logits]
        )
        return tf.transpose(logits.stack(), [1, 0, 2]), state

    def prompt_ids(self, prompt):
        """Ragged ids of each prompt: unknown characters dropped, empty -> newline."""
        codes = tf.strings.unicode_decode(prompt, "UTF-8", errors="ignore")
        known = tf.logical_and(codes >= 0, codes < tf.size(self.code_to_id))
        codes = tf.ragged.boolean_mask(codes, known)
        ids = tf.ragged.map_flat_values(tf.gather, self.code_to_id, codes)
        ids = tf.ragged.boolean_mask(ids, ids >= 0)
        # One newline in each row left empty, nothing in the others.
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
        filler = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(empty)], self.newline_id), empty
        )
        return tf.concat([ids, filler], axis=1)

    def generate(self, prompt, length, temperature, seed):
        """`prompt` [batch] strings -> prompt plus `length` sampled characters each."""
        ids = self.prompt_ids(prompt)
        batch = tf.shape(prompt)[0]
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        padded = ids.to_tensor(default_value=0)

        # Read each prompt; rows whose prompt has ended keep their state and
        # the logits of their last real character.
        def read(t, state, last_logits):
            logits, new_state = self._step(padded[:, t], state)
            live = t < lengths
            state = tf.where(live[:, None, None], new_state, state)
            return t + 1, state, tf.where(live[:, None], logits, last_logits)

        _, state, logits = tf.while_loop(
            lambda t, *_: t < tf.reduce_max(lengths),
            read,
            [tf.constant(0), self.zero_state(batch), tf.zeros([batch, len(self.vocab)])],
        )

        def sample(t, state, logits, out):
            # Stateless: the same seed gives the same text, on any server.
            if_greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
            scaled = logits / tf.maximum(temperature, 1e-6)
            drawn = tf.random.stateless_categorical(
                scaled, 1, seed=tf.stack([seed, t]), dtype=tf.int32
            )[:, 0]
            next_ids = tf.where(temperature > 0, drawn, if_greedy)
            logits, state = self._step(next_ids, state)
            return t + 1, state, logits, out.write(t, next_ids)

        _, _, _, out = tf.while_loop(
            lambda t, *_: t < length,
            sample,
            [tf.constant(0), state, logits, tf.TensorArray(tf.int32, size=length)],
        )
        new_ids = tf.transpose(out.stack())  # [batch, length]
        continuation = tf.strings.unicode_encode(tf.gather(self.codes, new_ids), "UTF-8")
        return prompt + continuation


def export(model, vocab, base_dir=DEFAULT_BASE_DIR):
    """Writes the next `saved_models/textgen/<N>/`; returns its path.

    Signatures:
    - `serving_default`: `prompt` string [batch], `length` int32 [],
      `temperature` float32 [], `seed` int32 [] -> `text` string [batch].
    - `step`: `ids` int32 [batch, t], `state` float32 [batch, S, units]
      -> `logits` float32 [batch, t, vocabulary], `state` (S state tensors).
    - `vocabulary`: no inputs -> `characters` string [vocabulary], the id of
      each character, for `step` clients.
    """
    generator = Generator(model, vocab)
    width = generator.units

    def serve(prompt, length, temperature, seed):
        return {"text": generator.generate(prompt, length, temperature, seed)}

    def step(ids, state):
        logits, new_state = generator.step(ids, state)
        return {"logits": logits, "state": new_state}

    def characters():
        return {"characters": tf.constant(generator.vocab)}

    def write(path):
        # No archive.track(model): the endpoints capture the weights they use,
        # and tracking the model as well stores every weight twice (Keras
        # issue #23553: twice the size on disk and in TF Serving's memory).
        archive = keras.export.ExportArchive()
        archive.add_endpoint(
            "serving_default",
            serve,
            input_signature=[
                tf.TensorSpec([None], tf.string, name="prompt"),
                tf.TensorSpec([], tf.int32, name="length"),
                tf.TensorSpec([], tf.float32, name="temperature"),
                tf.TensorSpec([], tf.int32, name="seed"),
            ],
        )
        archive.add_endpoint(
            "step",
            step,
            input_signature=[
                tf.TensorSpec([None, None], tf.int32, name="ids"),
                tf.TensorSpec([None, len(generator.state_sizes), width], tf.float32,
                              name="state"),
            ],
        )
        archive.add_endpoint("vocabulary", characters, input_signature=[])
        archive.write_out(path, verbose=False)

    request = {
        "inputs": {"prompt": ["ROMEO:"], "length": 60, "temperature": 0.8, "seed": 7}
    }
    return export_version(write, MODEL_NAME, base_dir=base_dir, example_request=request)
