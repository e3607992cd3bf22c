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

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasrnn.apps.common import model_lookup
from kerasrnn.apps.textgen.model import state_sizes
from kerasrnn.errors import UserError
from kerasrnn.serving.export import DEFAULT_BASE_DIR, export_version

MODEL_NAME = "textgen"


class Generator:
    """Runs a `CharacterModel` one character at a time (its `step`), in graph-friendly ops."""

    def __init__(self, model, vocab):
        self.model = model
        self.vocab = list(vocab)
        self.cells = model.cells
        codes = np.array([ord(ch) for ch in self.vocab], dtype=np.int32)
        code_to_id = np.full(codes.max() + 1, -1, dtype=np.int32)
        code_to_id[codes] = np.arange(len(codes), dtype=np.int32)
        self.codes = tf.constant(codes)
        self.code_to_id = tf.constant(code_to_id)
        self.newline_id = self.vocab.index("\n") if "\n" in self.vocab else 0
        # One [batch, units] tensor per state: LSTM cells hold two (h, c).
        self.state_sizes = []
        for cell in self.cells:
            self.state_sizes.extend(state_sizes(cell))
        self.units = max(self.state_sizes)

    def zero_state(self, batch):
        return [tf.zeros([batch, size], tf.float32) for size in self.state_sizes]

    def step(self, ids, state):
        """`ids` [batch, t] and `state` [batch, S, units] -> logits [batch, t, vocab], state."""
        steps = tf.shape(ids)[1]
        logits = tf.TensorArray(tf.float32, size=steps)

        # No table here: a streaming client calls this once per character,
        # and the table multiplies every character's embedding where that
        # call needs one.
        def body(t, states, logits):
            out, states = self.model.step(self.model.first(ids[:, t]), states)
            return t + 1, states, logits.write(t, out)

        _, states, logits = tf.while_loop(
            lambda t, *_: t < steps, body, [tf.constant(0), tf.unstack(state, axis=1), logits]
        )
        return tf.transpose(logits.stack(), [1, 0, 2]), tf.stack(states, axis=1)

    def names(self):
        """Names of `trace`'s states and gates, "layer/name" (e.g. "0/c", "1/f")."""
        states, gates = [], []
        for i, cell in enumerate(self.cells):
            n = len(state_sizes(cell))
            states += [f"{i}/{name}" for name in ("h", "c")[:n]]
            gates += [f"{i}/{name}" for name in cell.gate_names]
        return states, gates

    def trace(self, ids):
        """Everything inside the network after each character of `ids` [batch, t].

        One loop over the text, in the graph. Returns `logits` [batch, t,
        vocab] (the prediction of the next character), `states` [batch, t, S,
        units] (every state tensor after the step, in `names()` order) and
        `gates` [batch, t, K, units] (every gate's activation in the step).
        """
        steps = tf.shape(ids)[1]
        batch = tf.shape(ids)[0]
        gate_count = sum(len(cell.gate_names) for cell in self.cells)

        def body(t, states, logits, all_states, all_gates):
            gates = []
            out, states = self.model.step(self.model.first(ids[:, t]), states, gates)
            gates = (tf.stack(gates, axis=1) if gates
                     else tf.zeros([batch, 0, self.units], tf.float32))
            return (t + 1, states, logits.write(t, out),
                    all_states.write(t, tf.stack(states, axis=1)), all_gates.write(t, gates))

        arrays = [tf.TensorArray(tf.float32, size=steps, element_shape=shape) for shape in (
            [None, len(self.vocab)], [None, len(self.state_sizes), self.units],
            [None, gate_count, self.units])]
        _, _, logits, states, gates = tf.while_loop(
            lambda t, *_: t < steps, body, [tf.constant(0), self.zero_state(batch), *arrays]
        )
        time_second = [1, 0, 2, 3]
        return (tf.transpose(logits.stack(), [1, 0, 2]),
                tf.transpose(states.stack(), time_second),
                tf.transpose(gates.stack(), time_second))

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
        table = self.model.first_table()

        # Read each prompt; rows whose prompt has ended keep their states and
        # the logits of their last real character.
        def read(t, states, last_logits):
            logits, new_states = self.model.step(tf.gather(table, padded[:, t]), states)
            live = t < lengths
            states = [
                tf.where(live[:, None], new, old)
                for new, old in zip(new_states, states, strict=True)
            ]
            return t + 1, states, tf.where(live[:, None], logits, last_logits)

        _, states, logits = tf.while_loop(
            lambda t, *_: t < tf.reduce_max(lengths),
            read,
            [tf.constant(0), self.zero_state(batch), tf.zeros([batch, len(self.vocab)])],
        )

        def draw(t, logits):
            # Stateless: the same seed gives the same text, on any server.
            return tf.random.stateless_categorical(
                logits / temperature, 1, seed=tf.stack([seed, t]), dtype=tf.int32
            )[:, 0]

        def most_likely(t, logits):
            return tf.argmax(logits, axis=-1, output_type=tf.int32)

        def continue_with(choose):
            def body(t, states, logits, out):
                next_ids = choose(t, logits)
                logits, states = self.model.step(tf.gather(table, next_ids), states)
                return t + 1, states, logits, out.write(t, next_ids)

            _, _, _, out = tf.while_loop(
                lambda t, *_: t < length,
                body,
                [tf.constant(0), states, logits, tf.TensorArray(tf.int32, size=length)],
            )
            return tf.transpose(out.stack())  # [batch, length]

        # Temperature 0 means greedy. Choosing once, outside the loop, keeps
        # each character to the ops of one of the two.
        new_ids = tf.cond(
            temperature > 0, lambda: continue_with(draw), lambda: continue_with(most_likely)
        )
        continuation = tf.strings.unicode_encode(tf.gather(self.codes, new_ids), "UTF-8")
        return prompt + continuation


class StepModel(keras.Model):
    """The model's step as a Keras model, for ONNX and LiteRT files.

    `ids` int32 [batch] (one character per row) and `state` float32
    [batch, S, units] -> `logits` float32 [batch, vocabulary] (the next
    character's), `new_state` and `characters` int32
    [vocabulary], the code point of each id, so that the file carries its
    vocabulary. A generation loop drives it (kerasrnn/apps/textgen/sampler.py);
    one step has no loop inside, so every runtime runs it with its plainest
    operators. The same step as `Generator.step`, which the SavedModel's
    `step` signature runs.
    """

    def __init__(self, model, vocab):
        super().__init__(name="textgen_step")
        self.source = model  # tracks the weights the step reads
        self.generator = Generator(model, vocab)
        self.built = True  # its weights are the trained model's

    def call(self, ids, state):
        generator = self.generator
        logits, states = generator.model.step(generator.model.first(ids),
                                               tf.unstack(state, axis=1))
        codes = np.array([ord(ch) for ch in generator.vocab], np.int32)  # a constant of the file
        return {"logits": logits, "new_state": tf.stack(states, axis=1),
                "characters": tf.constant(codes)}

    def input_signature(self, batch=None):
        generator = self.generator
        return [keras.InputSpec(shape=(batch,), dtype="int32", name="ids"),
                keras.InputSpec(shape=(batch, len(generator.state_sizes), generator.units),
                                dtype="float32", name="state")]


SOURCE = "training_text.json"  # in assets.extra/: where the training text came from


def export(model, vocab, base_dir=DEFAULT_BASE_DIR, source=None):
    """Writes the next `saved_models/textgen/<N>/`; returns its path.

    `source`, `{"text": path or None, "dataset": name}`, is stored in
    `assets.extra/training_text.json`, so that `kerasrnn textgen inspect`
    can find the held-out part of the text the model was trained on.

    Signatures:
    - `serving_default`: `prompt` string [batch], `length` int32 [],
      `temperature` float32 [], `seed` int32 [] -> `text` string [batch].
    - `step`: `ids` int32 [batch, t], `state` float32 [batch, S, units]
      -> `logits` float32 [batch, t, vocabulary], `state` (S state tensors).
    - `vocabulary`: no inputs -> `characters` string [vocabulary], the id of
      each character, for `step` clients.
    - `activations`: `ids` int32 [batch, t] -> `logits` [batch, t, vocabulary],
      `states` [batch, t, S, units], `gates` [batch, t, K, units], and their
      names `state_names` string [S], `gate_names` string [K] ("0/c", "0/f"):
      what `kerasrnn textgen inspect` shows.
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

    state_names, gate_names = generator.names()

    def activations(ids):
        logits, states, gates = generator.trace(ids)
        return {"logits": logits, "states": states, "gates": gates,
                "state_names": tf.constant(state_names), "gate_names": tf.constant(gate_names)}

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
        archive.add_endpoint(
            "activations",
            activations,
            input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")],
        )
        archive.write_out(path, verbose=False)

    request = {
        "inputs": {"prompt": ["ROMEO:"], "length": 60, "temperature": 0.8, "seed": 7}
    }
    extra = {SOURCE: source} if source is not None else None
    return export_version(write, MODEL_NAME, base_dir=base_dir, example_request=request,
                          extra_assets=extra)


SIGNATURES = ("serving_default", "step", "vocabulary")


def load(path=None):
    """A textgen SavedModel (default: see model_lookup) and the folder it came from."""
    path = model_lookup.resolve(MODEL_NAME, path)
    loaded = model_lookup.load_saved_model(path)
    missing = set(SIGNATURES) - set(loaded.signatures)
    if missing:
        raise UserError(f"{path}: not a textgen SavedModel (no {', '.join(sorted(missing))})")
    return loaded, path


def vocabulary(loaded):
    """The characters of a loaded textgen SavedModel, in id order."""
    return [c.decode("utf-8") for c in loaded.signatures["vocabulary"]()["characters"].numpy()]


def training_source(model_dir):
    """`{"text": ..., "dataset": ...}` stored by `export`, or None."""
    import json

    path = Path(model_dir) / "assets.extra" / SOURCE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
