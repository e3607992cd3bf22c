"""The textgen app: text input and its errors, training, the generating SavedModel."""

import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.apps.cli import main
from kerasrnn.apps.common import datasets, training
from kerasrnn.apps.textgen import data

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare"


def _invoke(*args):
    return CliRunner().invoke(main, ["textgen", *map(str, args)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 40,000 characters of tiny Shakespeare (or a made-up text without it)."""
    path = tmp_path_factory.mktemp("text") / "input.txt"
    source = SHAKESPEARE / "input.txt"
    if source.is_file():
        path.write_text(source.read_text(encoding="utf-8")[:40000], encoding="utf-8")
    else:
        rng = np.random.default_rng(0)
        words = ["to", "be", "or", "not", "that", "is", "the", "question", "ROMEO:", "\n"]
        path.write_text(" ".join(rng.choice(words, 8000)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("textgen")
    # An LSTM: its two state tensors (h, c) are the harder case for the generator.
    # One layer: the tests below write its step state out by hand.
    result = _invoke("train", "--text", corpus, "--cell", "lstm", "--units", "32", "--layers",
                     "1", "--epochs", "2", "--seq-len", "50", "--batch-size", "32", "--lr", "0.01",
                     "--workdir", tmp / "run", "--out", tmp / "saved_models", "--seed", "1")
    assert result.exit_code == 0, result.output
    return dict(tmp=tmp, corpus=corpus, workdir=tmp / "run", out=tmp / "saved_models",
                version=tmp / "saved_models" / "textgen" / "1", output=result.output)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file, not text"),
        ("café".encode("latin-1"), "not UTF-8 text"),
        (b"too short", "the text is too short"),
        # A NUL byte far past the start of otherwise good text.
        (b"to be or not to be\n" * 5000 + b"\x00" + b"that is the question\n" * 100,
         "a binary file, not text (a NUL byte at byte 95,000)"),
        (b"a" * 20000, "the text has one distinct character ('a')"),
        (b"\n" * 20000, "the text has one distinct character ('\\n')"),
    ],
)
def test_bad_text_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    result = _invoke("train", "--text", path, "--workdir", tmp_path / "w", "--out",
                     tmp_path / "sm")
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()  # no run folder left behind


def test_missing_text_file(tmp_path):
    result = _invoke("train", "--text", tmp_path / "nope.txt", "--workdir", tmp_path / "w")
    assert result.exit_code == 1 and "no such file" in result.output


def test_tfds_source_with_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    # mock_data stands in for the download, so the network counts as reachable.
    monkeypatch.setattr(datasets, "network_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=3):
        text = data.tfds_text("tiny_shakespeare")
    assert isinstance(text, str) and len(text) > 0


def test_no_network_says_to_pass_text_in_one_line_and_leaves_no_folder(tmp_path, monkeypatch,
                                                                        caplog):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(datasets, "network_reachable", lambda *a, **k: False)
    with caplog.at_level("INFO"):
        result = _invoke("train", "--workdir", tmp_path / "runs" / "w", "--out", tmp_path / "sm")
    assert result.exit_code == 1 and "pass --text FILE" in result.output
    assert len(result.output.splitlines()) == 1
    assert [r.getMessage() for r in caplog.records if r.levelname != "INFO"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # runs/, sm/, tfds/: none


def test_windows_are_shifted_by_one_character():
    ids = np.arange(23, dtype=np.int32)
    (x, y), = list(data.windows(ids, seq_len=4, batch_size=8).take(1))
    assert x.shape == (4, 4)  # 23 // 5 windows, the last partial one left out
    np.testing.assert_array_equal(x[1], [5, 6, 7, 8])
    np.testing.assert_array_equal(y[1], [6, 7, 8, 9])


def test_random_offsets_cut_new_windows_each_epoch():
    ids = np.arange(1000, dtype=np.int32)
    seeds = training.EpochSeeds(seed=3)

    def epoch(number):
        seeds.epoch.assign(number)
        pairs = list(data.windows(ids, 9, 4, seeds, random_offsets=True).unbatch())
        for x, y in pairs:
            np.testing.assert_array_equal(y[:-1], x[1:])  # target: input shifted by one
            np.testing.assert_array_equal(np.diff(x), 1)  # consecutive characters
        return sorted(int(x[0]) for x, _ in pairs)

    firsts = {number: epoch(number) for number in range(4)}
    assert {len(f) for f in firsts.values()} == {96}  # (1000 - 9) // 10 windows, batches of 4
    assert len({f[0] % 10 for f in firsts.values()}) > 1  # the grid moves between epochs
    assert epoch(2) == firsts[2]  # and is the same when an epoch is repeated (--resume)


def test_cosine_schedule_ends_at_a_tenth_of_the_peak(corpus, tmp_path):
    import keras

    import kerasrnn  # noqa: F401  (registers the cells for the .keras file)

    result = _invoke("train", "--text", corpus, "--units", "8", "--epochs", "2", "--seq-len",
                     "50", "--lr", "0.01", "--lr-schedule", "cosine", "--random-offsets",
                     "--workdir", tmp_path / "w", "--out", tmp_path / "sm")
    assert result.exit_code == 0, result.output
    optimizer = keras.saving.load_model(tmp_path / "w" / "model.keras").optimizer
    assert int(optimizer.iterations) > 0
    np.testing.assert_allclose(float(optimizer.learning_rate), 0.001, rtol=1e-5)


def test_training_reports_loss_and_exports(trained):
    output = trained["output"]
    assert "held out" in output and "Epoch 2/2" in output
    assert "nats/char" in output and "bits/char" in output
    results = json.loads((trained["workdir"] / "results.json").read_text())
    assert results["val_loss"] < math.log(65)  # better than uniform guessing
    assert (trained["version"] / "saved_model.pb").is_file()
    # The characters trained on: the optimizer's steps, each a batch of 32 windows of 50.
    import keras

    import kerasrnn  # noqa: F401  (registers the cells for the .keras file)

    steps = int(keras.saving.load_model(trained["workdir"] / "model.keras").optimizer.iterations)
    assert results["characters"] == steps * 32 * 50 > 0


def test_time_budget_stops_training_and_the_step_is_traced_once(corpus, tmp_path,
                                                                traces_of_train_step):
    """Without --epochs the clock alone ends the run, and the progress
    counts epochs without an end."""
    with traces_of_train_step() as traced:
        result = _invoke("train", "--text", corpus, "--units", "8",
                         "--minutes", "0.001", "--seq-len", "50", "--workdir", tmp_path / "w",
                         "--out", tmp_path / "sm")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "w" / "results.json").read_text())["epochs"] == 1
    assert json.loads((tmp_path / "w" / "run.json").read_text())["epochs"] is None
    assert "Epoch 1\n" in result.output and "Epoch 1/" not in result.output
    # Traced once: the optimizer's variables exist before the first step.
    assert len(traced) == 1


# The settings each budget gets: (cell, units, layers, batch_size, lr, lr_schedule, dropout,
# random_offsets, adam_beta_2).
SHORT = ("layernorm-gru", 256, 1, 32, 3e-3, "cosine-minutes", 0.0, True, 0.999)
MIDDLE = ("layernorm-gru", 384, 1, 32, 3e-3, "cosine-minutes", 0.1, True, 0.99)
LONG = ("gru", 384, 2, 32, 3e-3, "cosine-minutes", 0.2, True, 0.999)


@pytest.mark.parametrize(("args", "expected"), [
    (["--minutes", "5"], SHORT),  # the layer-normalized GRU, which learns most per step
    (["--minutes", "6.9", "--units", "100", "--dropout", "0.2", "--cell", "gru"],
     ("gru", 100) + SHORT[2:6] + (0.2, True, 0.999)),  # what is given is kept
    (["--minutes", "7"], MIDDLE),
    (["--minutes", "19.9"], MIDDLE),
    (["--minutes", "10", "--lr", "1e-3"], MIDDLE[:4] + (1e-3,) + MIDDLE[5:]),
    (["--minutes", "20"], LONG),
    ([], LONG),  # the default 20 minutes
    (["--minutes", "60", "--layers", "1"], ("gru", 384, 1) + LONG[3:]),
    (["--lr", "1e-3", "--lr-schedule", "constant", "--fixed-offsets", "--batch-size", "16"],
     ("gru", 384, 2, 16, 1e-3, "constant", 0.2, False, 0.999)),
    # The preset sets all but the batch.
    (["--minutes", "5", "--preset", "min-char-rnn"],
     ("rnn", 100, 1, 32, 0.1, "constant", 0.0, False, 0.999)),
    (["--preset", "min-char-rnn"], ("rnn", 100, 1, 32, 0.1, "constant", 0.0, False, 0.999)),
])
def test_the_budget_picks_the_settings_the_options_leave_open(args, expected, monkeypatch):
    from kerasrnn.apps.textgen import train

    configs = []
    monkeypatch.setattr(train, "run", lambda config, **kwargs: configs.append(config))
    result = _invoke("train", *args)
    assert result.exit_code == 0, result.output
    [config] = configs
    assert (config.cell, config.units, config.layers, config.batch_size, config.lr,
            config.lr_schedule, config.dropout, config.random_offsets,
            config.adam_beta_2) == expected


def test_help_says_each_budget_s_default_once_where_they_agree():
    result = _invoke("train", "--help")
    assert result.exit_code == 0, result.output
    text = re.sub(r"-\s+", "-", " ".join(result.output.split()))  # undo click's wrapping
    assert "Default: gru for --minutes 20 or more, layernorm-gru under." in text
    assert "Default: 384 for --minutes 7 or more, 256 under." in text
    assert "Default: 0.2 for --minutes 20 or more, 0.1 from 7, 0.0 under 7." in text
    assert "Default: 0.003. " in text  # the same rate at every budget


def test_two_workers_stop_together_at_the_time_budget(corpus, tmp_path, two_workers):
    # Each worker has its own clock; if they stopped at different batches the
    # one that went on would wait for the other in a collective op.
    out, workdir = tmp_path / "saved_models", tmp_path / "run"
    workers = two_workers("textgen", "train", "--text", corpus, "--units", "16", "--seq-len", "50",
                          "--epochs", "50", "--minutes", "0.1", "--workdir", workdir, "--out", out)
    codes = [worker.wait(timeout=300) for worker in workers]
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert json.loads((workdir / "results.json").read_text())["epochs"] < 50
    assert [p.name for p in (out / "textgen").iterdir()] == ["1"]


def test_min_char_rnn_preset_prints_its_smoothed_loss(corpus, tmp_path):
    result = _invoke("train", "--text", corpus, "--preset", "min-char-rnn", "--epochs", "1",
                     "--batch-size", "16", "--workdir", tmp_path / "w", "--out", tmp_path / "sm")
    assert result.exit_code == 0, result.output
    assert "'units': 100" in result.output and "'seq_len': 25" in result.output
    assert "iter 0, smoothed loss: " in result.output
    run = json.loads((tmp_path / "w" / "run.json").read_text())
    assert (run["cell"], run["optimizer"], run["lr"], run["clipvalue"]) == ("rnn", "adagrad",
                                                                           0.1, 5.0)


# Runs with the session-based loader TF Serving uses, in a process that never
# imports kerasrnn.
SESSION_LOADER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    path, requests = sys.argv[1], json.loads(sys.argv[2])
    answers = []
    with tf.compat.v1.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        for name, feed in requests:
            signature = meta.signature_def[name]
            feed_dict = {signature.inputs[k].name: np.array(v) for k, v in feed.items()}
            fetch = {k: v.name for k, v in signature.outputs.items()}
            out = sess.run(fetch, feed_dict)
            utf8 = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])
            answers.append({k: (utf8(v) if v.dtype == object else v).tolist()
                            for k, v in out.items()})
    assert "kerasrnn" not in sys.modules
    print(json.dumps(answers))
    """
)


def _session_run(version, requests):
    run = subprocess.run(
        [sys.executable, "-c", SESSION_LOADER, str(version), json.dumps(requests)],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_saved_model_generates_in_tf_serving_s_loader(trained):
    import keras

    import kerasrnn  # noqa: F401  (registers the cells for the .keras file)

    def generate(prompts, length, temperature, seed):
        return ["serving_default", {"prompt": prompts, "length": length,
                                    "temperature": temperature, "seed": seed}]

    state_width = None
    vocab = json.loads((trained["workdir"] / "vocabulary.json").read_text())
    ids = [[vocab.index(c) for c in "ROMEO:"]]
    answers = _session_run(trained["version"], [
        generate(["ROMEO:", "JULIET:"], 40, 0.8, 7),
        generate(["ROMEO:", "JULIET:"], 40, 0.8, 7),
        generate(["ROMEO:", "JULIET:"], 40, 0.8, 8),
        generate(["", "ROMEO:\u263a\u00e9"], 30, 0.8, 7),  # empty; characters never seen
        generate(["ROMEO:"], 25, 0.0, 0),  # greedy
        ["step", {"ids": ids, "state": np.zeros((1, 2, 32)).tolist()}],
    ])
    first, again, other_seed, odd, greedy, step = answers
    assert first == again and first != other_seed  # same seed, same text
    assert first["text"][0].startswith("ROMEO:") and first["text"][1].startswith("JULIET:")
    assert [len(t) for t in first["text"]] == [6 + 40, 7 + 40]
    assert len(odd["text"][0]) == 30 and odd["text"][1].startswith("ROMEO:\u263a\u00e9")
    assert len(odd["text"][1]) == len("ROMEO:\u263a\u00e9") + 30

    # The SavedModel's greedy text and step logits are the Keras model's own.
    model = keras.saving.load_model(trained["workdir"] / "model.keras")
    text = "ROMEO:"
    for _ in range(25):
        # Called eagerly: predict would trace a graph for each length.
        logits = model(np.array([[vocab.index(c) for c in text]]), training=False).numpy()
        text += vocab[int(logits[0, -1].argmax())]
    assert greedy["text"] == [text]
    expected = model.predict(np.array(ids), verbose=0)
    np.testing.assert_allclose(step["logits"], expected, atol=1e-4)
    state_width = np.array(step["state"]).shape
    assert state_width == (1, 2, 32)  # LSTM: h and c


@pytest.mark.parametrize("cell", ["gru", "mingru"])
def test_the_untrained_model_predicts_the_training_text_s_frequencies(cell):
    """With `counts` (training passes the training text's), the output
    layer's bias makes an untrained model's softmax the characters'
    frequencies, one added to each count; without them, every character alike."""
    from kerasrnn.apps.textgen.model import CharacterModel

    counts = np.array([900, 90, 9, 0])
    bias = CharacterModel(4, cell, units=4, counts=counts).get_layer("logits").bias
    probabilities = np.exp(bias) / np.exp(bias).sum()
    np.testing.assert_allclose(probabilities, (counts + 1) / (counts + 1).sum(), rtol=1e-5)
    assert not np.any(CharacterModel(4, cell, units=4).get_layer("logits").bias)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mingru", "minlstm"])
def test_generator_runs_every_layer_of_a_stacked_model(cell):
    """Two layers (residual blocks for the minimal cells): the generator's
    steps give the Keras model's own logits."""
    import tensorflow as tf

    from kerasrnn.apps.textgen.generation import Generator
    from kerasrnn.apps.textgen.model import CharacterModel

    vocab = list("\nabcdefgh")
    model = CharacterModel(len(vocab), cell, units=8, layers=2, seed=0)
    # Large random weights: each next character depends on the whole input.
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    generator = Generator(model, vocab)
    ids = np.array([[1, 4, 2, 0, 7, 3]], dtype=np.int32)
    zero = tf.zeros([1, len(generator.state_sizes), 8])
    logits, _ = generator.step(tf.constant(ids), zero)
    expected = model.predict(ids, verbose=0)
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-5)

    # Greedy generation goes through the projection table: it must pick the
    # model's most likely character at every step.
    text = generator.generate(tf.constant(["abc"]), 12, tf.constant(0.0), 0)[0].numpy().decode()
    context = [vocab.index(c) for c in "abc"]
    for _ in range(12):
        # Called eagerly: predict would trace a graph for each length.
        logits = model(np.array([context]), training=False).numpy()
        context.append(int(logits[0, -1].argmax()))
    assert text == "".join(vocab[i] for i in context)


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_a_saved_model_file_loads_as_the_model_with_its_step(cell, tmp_path):
    """model.keras (what training saves and `textgen export` reads) loads
    back as the same class, with the step generation and export run, and
    the same logits both ways."""
    import keras
    import tensorflow as tf

    from kerasrnn.apps.textgen.model import CharacterModel, state_sizes

    model = CharacterModel(6, cell, units=4, layers=2, dropout=0.1, seed=0,
                           counts=[5, 4, 3, 2, 1, 0])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is CharacterModel and loaded.get_config() == model.get_config()
    ids = np.array([[1, 4, 2, 0, 5]], "int32")
    np.testing.assert_array_equal(loaded(ids), model(ids))
    states = [tf.zeros([1, size]) for c in loaded.cells for size in state_sizes(c)]
    for t in range(ids.shape[1]):
        logits, states = loaded.step(loaded.first(ids[:, t]), states)
    np.testing.assert_allclose(logits, model(ids)[:, -1], atol=1e-5)


def test_sample_command(trained):
    args = ["sample", "--model", trained["out"] / "textgen", "--length", "30", "--seed", "3"]
    first, again = _invoke(*args), _invoke(*args)
    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout and first.stdout.startswith("ROMEO:")
    assert len(first.stdout) == len("ROMEO:") + 30 + 1  # and a newline
    streamed = _invoke(*args, "--stream", "--num", "2")
    assert streamed.exit_code == 0, streamed.output
    samples = streamed.stdout.split("--- sample ")[1:]
    assert len(samples) == 2 and samples[1].startswith("2 (seed 4) ---\n")
    assert all(s.split("---\n", 1)[1].startswith("ROMEO:") for s in samples)


def test_sample_without_a_model_is_one_line(tmp_path):
    result = _invoke("sample", "--model", tmp_path)
    assert result.exit_code == 1 and "not a SavedModel folder" in result.output


def test_evaluate_matches_the_training_validation_loss(trained):
    result = _invoke("evaluate", "--model", trained["version"], "--text", trained["corpus"],
                     "--seq-len", "50")
    assert result.exit_code == 0, result.output
    loss = float(result.stdout.split("loss: ")[1].split()[0])
    bits = float(result.stdout.split("bits per character: ")[1].split()[0])
    best = json.loads((trained["workdir"] / "results.json").read_text())["val_loss"]
    assert loss == pytest.approx(best, abs=2e-3)
    assert bits == pytest.approx(loss / math.log(2), abs=2e-4)


def _evaluate(trained, *args):
    """`textgen evaluate` of the trained model on its corpus: (stdout, loss)."""
    result = _invoke("evaluate", "--model", trained["version"], "--text", trained["corpus"], *args)
    assert result.exit_code == 0, result.output
    return result.stdout, float(result.stdout.split("loss: ")[1].split()[0])


def _keras_model_and_held_out(trained):
    """The trained Keras model, and its corpus's held-out 10% as character ids."""
    import keras

    model = keras.saving.load_model(trained["workdir"] / "model.keras")
    vocab = json.loads((trained["workdir"] / "vocabulary.json").read_text())
    text = trained["corpus"].read_text(encoding="utf-8")
    return model, data.encode(text, vocab)[int(len(text) * (1 - data.VALIDATION_FRACTION)):]


def test_evaluate_carrying_the_state_reads_each_stream_whole(trained):
    """--carry-state predicts each character from all of its stream before it.

    The reference is the Keras model itself run over each whole stream in one
    call; with the state carried, the window length no longer matters.
    """
    import keras

    output, carried_7 = _evaluate(trained, "--seq-len", "7", "--carry-state")
    _, carried_50 = _evaluate(trained, "--seq-len", "50", "--carry-state")
    _, windows_7 = _evaluate(trained, "--seq-len", "7")
    assert "64 streams, the state carried" in output

    model, held_out = _keras_model_and_held_out(trained)
    streams = held_out[: 64 * (len(held_out) // 64)].reshape(64, -1)
    logits = model.predict(streams[:, :-1], verbose=0)
    expected = float(np.mean(keras.losses.sparse_categorical_crossentropy(
        streams[:, 1:], logits, from_logits=True)))
    assert carried_7 == pytest.approx(expected, abs=2e-4)
    assert carried_50 == pytest.approx(expected, abs=2e-4)
    # Without the state carried, 7-character windows lose context even for
    # this small model (2.623 against 2.610 when this test was written).
    assert windows_7 > expected + 0.005


def test_evaluate_on_random_windows_reads_nanogpt_s_draw_of_windows(trained):
    """--random-windows: windows of --seq-len at starts drawn uniformly from
    the held-out text (nanoGPT's estimate_loss), against the Keras model."""
    import keras

    random_windows = ["--seq-len", "20", "--random-windows", "300"]
    output, loss = _evaluate(trained, *random_windows, "--seed", "3")
    assert "300 windows of 20 characters at random starts (seed 3)" in output
    model, held_out = _keras_model_and_held_out(trained)
    starts = np.random.default_rng(3).integers(0, len(held_out) - 20, 300)
    windows = np.stack([held_out[s:s + 21] for s in starts])
    logits = model.predict(windows[:, :-1], verbose=0)
    expected = float(np.mean(keras.losses.sparse_categorical_crossentropy(
        windows[:, 1:], logits, from_logits=True)))
    assert loss == pytest.approx(expected, abs=2e-4)
    assert _evaluate(trained, *random_windows, "--seed", "4")[1] != loss  # another draw
    both = _invoke("evaluate", "--model", trained["version"], "--text", trained["corpus"],
                   "--random-windows", "10", "--carry-state")
    assert both.exit_code == 2 and "give one" in both.output


def test_cosine_over_minutes_follows_the_clock():
    import types

    import keras

    from kerasrnn.apps.textgen.train import CosineOverMinutes

    now = [100.0]
    schedule = CosineOverMinutes(0.01, minutes=2, strategy=None, clock=lambda: now[0])
    schedule.set_model(types.SimpleNamespace(optimizer=keras.optimizers.Adam(0.01)))
    schedule.on_train_begin()
    rates = []
    for elapsed in (0, 30, 60, 120, 300):  # seconds into a 2-minute budget
        now[0] = 100.0 + elapsed
        schedule.on_train_batch_begin(0)
        rates.append(float(schedule.model.optimizer.learning_rate))
    # The peak, the cosine at a quarter and at half of the budget, a tenth from its end on.
    quarter = 0.001 + 0.009 * (1 + math.cos(math.pi / 4)) / 2
    np.testing.assert_allclose(rates, [0.01, quarter, 0.0055, 0.001, 0.001], rtol=1e-6)


def test_cosine_over_minutes_and_the_budget_s_adam_run_in_training(corpus, tmp_path):
    import keras

    import kerasrnn  # noqa: F401  (registers the cells for the .keras file)

    result = _invoke("train", "--text", corpus, "--units", "8", "--epochs", "2", "--seq-len",
                     "50", "--lr", "0.01", "--lr-schedule", "cosine-minutes", "--minutes", "10",
                     "--workdir", tmp_path / "w", "--out", tmp_path / "sm")
    assert result.exit_code == 0, result.output
    optimizer = keras.saving.load_model(tmp_path / "w" / "model.keras").optimizer
    rate = float(optimizer.learning_rate)
    assert 0.001 < rate < 0.01  # decayed from the peak, a few seconds into a 10-minute budget
    # The middle budget's Adam, as run.json records it.
    assert json.loads((tmp_path / "w" / "run.json").read_text())["adam_beta_2"] == 0.99
    assert optimizer.beta_2 == 0.99


def test_sample_length_zero_prints_the_prompt_and_too_long_is_a_usage_error(trained):
    model = trained["out"] / "textgen"
    for stream in ([], ["--stream"]):
        result = _invoke("sample", "--model", model, "--length", "0", "--seed", "1",
                         "--prompt", "To be", *stream)
        assert result.exit_code == 0, result.output
        assert result.stdout == "To be\n"
    result = _invoke("sample", "--model", model, "--length", "3000000000")
    assert result.exit_code == 2 and "0<=x<=2147483647" in result.output


def test_a_seed_gives_the_same_text_with_and_without_stream(trained):
    args = ["sample", "--model", trained["out"] / "textgen", "--length", "40", "--seed", "11"]
    plain, streamed = _invoke(*args), _invoke(*args, "--stream")
    assert plain.exit_code == 0 and streamed.exit_code == 0, streamed.output
    assert plain.stdout == streamed.stdout


def test_each_of_num_samples_is_reproducible_alone_and_a_drawn_seed_is_printed(trained):
    model = trained["out"] / "textgen"
    both = _invoke("sample", "--model", model, "--length", "25", "--num", "2", "--seed", "5")
    assert both.exit_code == 0, both.output
    second = both.stdout.split("--- sample 2 (seed 6) ---\n")[1]
    alone = _invoke("sample", "--model", model, "--length", "25", "--seed", "6")
    assert alone.stdout == second
    drawn = _invoke("sample", "--model", model, "--length", "25")
    seed = int(drawn.stderr.split("seed: ")[1].split()[0])
    again = _invoke("sample", "--model", model, "--length", "25", "--seed", seed)
    assert drawn.stdout == again.stdout


def test_a_corrupt_saved_model_is_one_line(trained, tmp_path):
    import shutil

    broken = tmp_path / "textgen" / "1"
    shutil.copytree(trained["version"], broken)
    (broken / "saved_model.pb").write_bytes(b"not a protobuf at all")
    result = _invoke("sample", "--model", broken)
    assert result.exit_code == 1
    assert "cannot load this SavedModel" in result.output and "Traceback" not in result.output


def test_export_from_the_work_folder_gives_the_same_signatures(trained, tmp_path):
    import tensorflow as tf

    result = _invoke("export", "--workdir", trained["workdir"], "--out", tmp_path / "later")
    assert result.exit_code == 0, result.output
    later = tf.saved_model.load(str(tmp_path / "later" / "textgen" / "1"))
    original = tf.saved_model.load(str(trained["version"]))
    assert set(later.signatures) == set(original.signatures)
    for name in original.signatures:
        assert (later.signatures[name].structured_input_signature
                == original.signatures[name].structured_input_signature)
    args = ["sample", "--length", "30", "--seed", "2"]
    assert (_invoke(*args, "--model", tmp_path / "later" / "textgen").stdout
            == _invoke(*args, "--model", trained["version"]).stdout)


def test_a_time_budget_that_cuts_an_epoch_says_so(corpus, tmp_path):
    result = _invoke("train", "--text", corpus, "--cell", "rnn", "--units", "8", "--epochs",
                     "3", "--seq-len", "20", "--batch-size", "8", "--minutes", "0.0001",
                     "--workdir", tmp_path / "run", "--out", tmp_path / "sm")
    assert result.exit_code == 0, result.output
    assert "ended epoch 1 after 1 of its" in result.output
    steps = int(result.output.split("ended epoch 1 after 1 of its ")[1].split()[0])
    assert f"{steps}/{steps}" not in result.output  # the bar stops where the epoch did
    assert json.loads((tmp_path / "run" / "results.json").read_text())["last_epoch_partial"]


def test_evaluate_reads_the_installed_held_out_text_as_it_reads_the_whole(trained, tmp_path,
                                                                          monkeypatch):
    """kerasrnn installs tiny Shakespeare's held-out 10% (apps/data/): with
    no --text, evaluate reads it, and measures what --text gives on the
    whole text from which it was cut."""
    from kerasrnn.apps.common import bundled

    text = trained["corpus"].read_text(encoding="utf-8")
    monkeypatch.setattr(bundled, "FOLDER", tmp_path)
    (tmp_path / bundled.SHAKESPEARE_HELD_OUT).write_text(
        text[int(len(text) * (1 - data.VALIDATION_FRACTION)):], encoding="utf-8")
    installed = _invoke("evaluate", "--model", trained["version"])
    whole = _invoke("evaluate", "--model", trained["version"], "--text", trained["corpus"])
    assert installed.exit_code == 0 and whole.exit_code == 0, (installed.output, whole.output)
    assert installed.stderr.splitlines()[0] == (
        "text: the held-out 10% of tiny Shakespeare, installed with kerasrnn")
    assert whole.stderr.splitlines()[0] == f"text: {trained['corpus']}"
    assert installed.stdout == whole.stdout and "loss: " in installed.stdout


NEW_CELLS = ["layernorm-lstm", "layernorm-gru", "layernorm-rnn", "peephole-lstm", "mingru",
             "minlstm"]


@pytest.fixture(scope="module")
def new_cells(corpus, tmp_path_factory):
    """One tiny model of each layer-normalized, peephole and minimal cell, exported."""
    tmp = tmp_path_factory.mktemp("new-cells")
    for cell in NEW_CELLS:
        # One layer: the tests below count one layer's gates and states.
        result = _invoke("train", "--text", corpus, "--cell", cell, "--units", "8", "--layers",
                         "1", "--epochs", "1", "--seq-len", "25", "--batch-size", "64", "--workdir",
                         tmp / cell, "--out", tmp / "saved_models", "--seed", "1")
        assert result.exit_code == 0, result.output
    return tmp


def test_new_cells_sample_in_the_graph_and_through_the_step_signature(new_cells):
    for version in range(1, len(NEW_CELLS) + 1):
        args = ["sample", "--model", new_cells / "saved_models" / "textgen" / str(version),
                "--length", "20", "--seed", "2"]
        whole, streamed = _invoke(*args), _invoke(*args, "--stream")
        assert whole.exit_code == 0 and streamed.exit_code == 0, (whole.output, streamed.output)
        # --stream feeds one character at a time through `step`: the same text.
        assert whole.stdout == streamed.stdout and whole.stdout.startswith("ROMEO:")


def test_new_cells_pass_the_serving_check(new_cells):
    result = CliRunner().invoke(main, ["serving", "check", str(new_cells / "saved_models")])
    assert result.exit_code == 0, result.output
    for version in range(1, len(NEW_CELLS) + 1):
        assert f"textgen/{version}: loads with the session loader" in result.output


def test_new_cells_show_their_states_and_gates_to_inspect(new_cells, corpus, tmp_path):
    import tensorflow as tf

    gates = {"layernorm-lstm": 3, "layernorm-gru": 2, "layernorm-rnn": 0, "peephole-lstm": 3,
             "mingru": 1, "minlstm": 2}
    states = {"layernorm-lstm": 2, "layernorm-gru": 1, "layernorm-rnn": 1, "peephole-lstm": 2,
              "mingru": 1, "minlstm": 1}
    for version, cell in enumerate(NEW_CELLS, start=1):
        loaded = tf.saved_model.load(str(new_cells / "saved_models" / "textgen" / str(version)))
        out = loaded.signatures["activations"](ids=tf.zeros([1, 5], tf.int32))
        assert out["gates"].shape[2] == gates[cell] and out["states"].shape[2] == states[cell]
    result = _invoke("inspect", "--model", new_cells / "saved_models" / "textgen" / "1",
                     "--text", corpus, "--chars", "300", "--out", tmp_path / "page")
    assert result.exit_code == 0, result.output
    assert "0/f" in (tmp_path / "page" / "index.html").read_text()


def test_both_apps_offer_the_same_cells_and_refuse_an_unknown_one():
    from kerasrnn.apps.common.choices import CELLS

    for app in ("mnist", "textgen"):
        result = CliRunner().invoke(main, [app, "train", "--help"], terminal_width=400)
        assert all(name in result.output for name in CELLS), app
        result = CliRunner().invoke(main, [app, "train", "--cell", "tree-lstm"])
        assert result.exit_code == 2 and "Invalid value for '--cell'" in result.output


def test_training_into_a_file_writes_one_line_per_epoch(corpus, tmp_path):
    """Not a terminal (CliRunner's output, like `> log`): no progress bar
    updates strung into one line, but a line per epoch and the time used."""
    result = _invoke("train", "--text", corpus, "--units", "8", "--epochs", "3", "--seq-len",
                     "25", "--batch-size", "64", "--workdir", tmp_path / "run", "--out",
                     tmp_path / "saved_models")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) < 300, max(lines, key=len)
    assert "\r" not in result.output and "\x1b[" not in result.output
    assert len([line for line in lines if "val_loss" in line]) == 3
    assert len([line for line in lines if " minutes used" in line]) == 3


def test_exporting_the_other_app_s_run_is_one_line_and_makes_no_folder(trained, tmp_path):
    result = CliRunner().invoke(main, ["mnist", "export", "--workdir", trained["workdir"],
                                       "--out", tmp_path / "out"])
    assert result.exit_code == 1 and "not an mnist run" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_model_too_large_for_memory_is_one_line(corpus, tmp_path):
    result = _invoke("train", "--text", corpus, "--units", "1000000", "--epochs", "1",
                     "--workdir", tmp_path / "run", "--out", tmp_path / "saved_models")
    assert result.exit_code == 1 and "out of memory" in result.output, result.output
    assert "Traceback" not in result.output


def test_a_lock_file_that_is_a_folder_is_one_line(corpus, tmp_path):
    (tmp_path / "run" / ".lock").mkdir(parents=True)
    result = _invoke("train", "--text", corpus, "--workdir", tmp_path / "run")
    assert result.exit_code == 1 and "cannot lock the work folder" in result.output


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_export_the_step_and_sample_from_it_without_tensorflow(trained, format, deploy_tools,
                                                               fresh_command):
    """`textgen export --format` writes the model's step to OUT/textgen.onnx
    or .tflite; it gives the SavedModel's probabilities at every step, and
    `textgen sample --model FILE --temperature 0` the SavedModel's text, with
    neither TensorFlow nor Keras imported."""
    deploy_tools(format)
    import tensorflow as tf

    from kerasrnn.apps.textgen.generation import load
    from kerasrnn.apps.textgen.sampler import StepFile

    out = trained["out"]
    result = _invoke("export", "--workdir", trained["workdir"], "--out", out, "--format", format)
    assert result.exit_code == 0, result.output
    path = out / ("textgen.onnx" if format == "onnx" else "textgen.tflite")
    assert path.is_file() and not list(out.glob(".textgen*"))

    # Each step's probabilities against the SavedModel's `step` signature.
    loaded, _ = load(trained["version"])
    step = loaded.signatures["step"]
    step_file = StepFile(path)
    ids = [step_file.vocab.index(ch) for ch in "ROMEO: to be"]
    saved_state = tf.zeros([1, *step_file.state_shape])
    file_state = np.zeros((1, *step_file.state_shape), np.float32)
    for i in ids:
        expected = step(ids=tf.constant([[i]], tf.int32), state=saved_state)
        saved_state = expected["state"]
        logits, file_state = step_file.step([i], file_state)
        np.testing.assert_allclose(tf.nn.softmax(logits).numpy(),
                                   tf.nn.softmax(expected["logits"][:, -1]).numpy(), atol=1e-4)

    saved = _invoke("sample", "--model", trained["version"], "--temperature", "0",
                    "--length", "300", "--seed", "1")
    assert saved.exit_code == 0, saved.output
    run, text, imported = fresh_command("textgen", "sample", "--model", path, "--temperature",
                                        "0", "--length", "300", "--seed", "1")
    assert run.returncode == 0, run.stderr
    assert imported == []
    assert text == saved.stdout and text.startswith("ROMEO:") and len(text) > 300


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_the_pretrained_model_as_onnx_and_litert_writes_its_savedmodel_s_text(format,
                                                                             deploy_tools):
    """`--model onnx` and `--model litert`: the pretrained model in that
    format, greedily, writes the text its SavedModel writes."""
    deploy_tools(format)
    from kerasrnn.apps.common.model_lookup import pretrained_dir

    args = ["--prompt", "ROMEO:", "--temperature", "0", "--length", "200"]
    saved = _invoke("sample", "--model", pretrained_dir() / "textgen", *args)
    exported = _invoke("sample", "--model", format, *args)
    assert saved.exit_code == 0 and exported.exit_code == 0, exported.output
    assert saved.stdout.startswith("ROMEO:") and len(saved.stdout) > 200
    assert exported.stdout == saved.stdout


def test_options_given_beside_a_preset_win_over_it(corpus, tmp_path):
    """`--preset min-char-rnn --cell minlstm --units 7 --seq-len 9` trains
    that cell, of 7 units, on windows of 9, and says so; the preset sets the
    rest (Adagrad 0.1, clip 5)."""
    result = _invoke("train", "--text", corpus, "--preset", "min-char-rnn", "--cell", "minlstm",
                     "--units", "7", "--seq-len", "9", "--epochs", "1",
                     "--workdir", tmp_path / "run", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "as given instead: --cell, --seq-len, --units" in result.output
    config = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (config["cell"], config["units"], config["seq_len"]) == ("minlstm", 7, 9)
    assert (config["optimizer"], config["lr"], config["clipvalue"]) == ("adagrad", 0.1, 5.0)


def test_a_cosine_over_epochs_needs_epochs(corpus, tmp_path):
    result = _invoke("train", "--text", corpus, "--lr-schedule", "cosine", "--workdir",
                     tmp_path / "w", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "--lr-schedule cosine decays the rate over --epochs: give --epochs" in result.output
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("args", [["--units", "100000000000000000000"],
                                  ["--epochs", "4611686018427387904"],
                                  ["--epochs", "4611686018427387904", "--lr-schedule", "cosine"],
                                  ["--seq-len", "4611686018427387904"]])
def test_huge_numbers_are_usage_errors(corpus, tmp_path, args):
    result = _invoke("train", "--text", corpus, *args, "--workdir", tmp_path / "w",
                     "--out", tmp_path / "o")
    assert result.exit_code == 2 and f"Invalid value for '{args[0]}'" in result.output
    assert not (tmp_path / "w").exists()


def test_evaluate_on_a_text_the_model_cannot_read_says_so(trained, tmp_path):
    text = tmp_path / "greek.txt"
    text.write_text("αβγδεζηθικλμ" * 500, encoding="utf-8")  # no space, no newline
    result = _invoke("evaluate", "--model", trained["version"], "--text", text)
    assert result.exit_code == 1 and "--seq-len" not in result.output
    assert "not one character of its held-out part is in the model's vocabulary" in result.output


def test_a_diverged_run_is_exported_with_a_warning(corpus, tmp_path):
    result = _invoke("train", "--text", corpus, "--units", "16", "--layers", "1", "--epochs",
                     "1", "--lr", "1000", "--lr-schedule", "constant", "--workdir",
                     tmp_path / "w", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "the run diverged" in result.stderr and "lower --lr" in result.stderr


def test_characters_the_model_lacks_do_not_move_the_held_out_part(trained, tmp_path):
    """Training, evaluate and inspect cut the held-out 10% at one place, on
    the text as read (data.held_out_start): characters the model lacks, early
    in a text, leave what evaluate measures unchanged."""
    text = trained["corpus"].read_text(encoding="utf-8")
    changed = tmp_path / "changed.txt"
    # The same length, 3,000 characters of the first half replaced by one the
    # model never saw.
    changed.write_text(text[:1000] + "é" * 3000 + text[4000:], encoding="utf-8")
    original = _invoke("evaluate", "--model", trained["version"], "--text", trained["corpus"])
    with_unknown = _invoke("evaluate", "--model", trained["version"], "--text", changed)
    assert original.exit_code == 0 and with_unknown.exit_code == 0, with_unknown.output
    assert with_unknown.stdout == original.stdout and "loss: " in original.stdout


def test_a_seed_too_large_for_num_is_a_usage_error_before_tensorflow_starts(tmp_path,
                                                                            fresh_command):
    run, _, imported = fresh_command("textgen", "sample", "--seed", "2147483647", "--num", "2",
                                     cwd=tmp_path)
    assert run.returncode == 2 and "passes the largest seed" in run.stderr
    assert "tensorflow" not in imported
