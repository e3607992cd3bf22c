"""`kerasrnn textgen inspect` finds what a unit tracks, and the page shows it.

The model here is set by hand, so that what it tracks is known: unit 0 of
its LSTM is a latch whose cell state is 1 inside double quotes and 0
outside (the opening quote opens its input gate and writes 1; the closing
one, reading h = tanh(1) back, writes 0; the forget gate is shut only when
a quote arrives). Its other units have random weights. The finder must name
unit 0 for "inside double quotes" with |r| > 0.9: a unit with |r| above 0.9
shares over 80% of its variance with the feature, which the latch does up to
its gates' saturation (r is above 0.99), while the random units stay far
below (checked too). The page is then opened in headless Chromium.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.apps.cli import main

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "said", "nothing", "more"]


def _text(seed=0, sentences=120):
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(sentences):
        words = list(rng.choice(WORDS, rng.integers(2, 6)))
        if rng.random() < 0.5:
            quoted = list(rng.choice(WORDS, rng.integers(1, 6)))
            words += ['"' + " ".join(quoted) + '"']
        parts.append(" ".join(words) + ".\n")
    return "".join(parts)


def _latch_model(vocab, units=6):
    """An LSTM model whose unit 0 is 1 inside double quotes, 0 outside."""
    from kerasrnn.apps.textgen.model import CharacterModel

    model = CharacterModel(len(vocab), "lstm", units=units)
    rng = np.random.default_rng(1)
    embedding = rng.normal(0, 0.3, (len(vocab), 64)).astype("float32")
    embedding[:, 0] = 0.0
    embedding[vocab.index('"'), 0] = 1.0  # dimension 0 means "a quote"
    kernel = rng.normal(0, 0.3, (64, 4 * units)).astype("float32")
    recurrent = rng.normal(0, 0.3, (units, 4 * units)).astype("float32")
    bias = np.zeros(4 * units, "float32")
    i, f, g, o = (k * units for k in range(4))  # the gate blocks, unit 0 of each
    kernel[:, [i, f, g, o]] = 0.0
    kernel[0, 1:units] = kernel[0, units + 1 : 2 * units] = 0.0  # others ignore quotes
    recurrent[:, [i, f, g, o]] = 0.0
    kernel[0, i], bias[i] = 20.0, -10.0  # write only on a quote
    kernel[0, f], bias[f] = -20.0, 10.0  # forget only on a quote
    kernel[0, g] = 10.0  # write tanh(10 - 10/tanh(1)·h): 1 when closed, 0 when open
    recurrent[0, g] = -10.0 / np.tanh(1.0)
    bias[o] = 10.0  # h = tanh(c)
    model.get_layer("embedding").set_weights([embedding])
    model.get_layer("lstm_0").set_weights([kernel, recurrent, bias])
    return model


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    from kerasrnn.apps.textgen.generation import export

    tmp = tmp_path_factory.mktemp("inspect")
    text = _text()
    (tmp / "quotes.txt").write_text(text)
    vocab = sorted(set(text))
    version = export(_latch_model(vocab), vocab, tmp / "saved_models")
    result = CliRunner().invoke(main, ["textgen", "inspect", "--model", version, "--text",
                                       tmp / "quotes.txt", "--from-start", "--chars", "2000",
                                       "--out", tmp / "page"])
    assert result.exit_code == 0, result.output
    return dict(tmp=tmp, text=text[:2000], version=version, output=result.stdout,
                page=tmp / "page" / "index.html")


def test_the_finder_names_the_latch_for_double_quotes(inspected):
    from kerasrnn.apps.textgen.inspect import pearson, text_features

    line = next(line for line in inspected["output"].splitlines()
                if "inside double quotes" in line)
    r = float(line.split("r = ")[1])
    assert "layer 0, unit 0," in line and abs(r) > 0.9, line
    assert (inspected["tmp"] / "page" / "summary.png").stat().st_size > 10_000
    # The other units, random, are far from the feature.
    import tensorflow as tf

    loaded = tf.saved_model.load(str(inspected["version"]))
    vocab = [c.decode() for c in loaded.signatures["vocabulary"]()["characters"].numpy()]
    ids = tf.constant([[vocab.index(c) for c in inspected["text"]]])
    states = loaded.signatures["activations"](ids=ids)["states"].numpy()[0, :, 1]  # c
    r = pearson(text_features(inspected["text"])["inside double quotes"], states)
    assert abs(r[0]) > 0.99 and np.abs(r[1:]).max() < 0.5


def test_inspect_is_one_line_on_bad_input(inspected, tmp_path):
    runner = CliRunner()
    alien = tmp_path / "alien.txt"
    alien.write_text("ЖЖЖЖЖЖ")
    for args, message in [
        (["--text", alien], "no character of the text is in the model's vocabulary"),
        (["--chars", "0"], "0 is not in the range"),
        (["--out", "/proc/kerasrnn-inspect"], "cannot write there"),
        (["--model", Path(__file__).parents[1] / "saved_models" / "mnist"], "not a textgen"),
    ]:
        result = runner.invoke(main, ["textgen", "inspect", "--model", inspected["version"],
                                      "--text", inspected["tmp"] / "quotes.txt",
                                      "--out", tmp_path / "page", *args])
        assert result.exit_code in (1, 2) and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_inspect_checks_its_outputs_first_and_leaves_no_folder_when_it_fails(inspected,
                                                                              tmp_path):
    runner = CliRunner()
    base = ["textgen", "inspect", "--model", inspected["version"]]
    quotes = inspected["tmp"] / "quotes.txt"
    for name in ("index.html", "summary.png"):
        (tmp_path / name / name).mkdir(parents=True)  # a folder where the file goes
        result = runner.invoke(main, [*base, "--text", quotes, "--out", tmp_path / name])
        assert result.exit_code == 1 and "is in the way (not a file)" in result.output
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = runner.invoke(main, [*base, "--text", fifo, "--out", tmp_path / "new" / "page"])
    assert result.exit_code == 1 and "not a regular file" in result.output, result.output
    assert not (tmp_path / "new").exists()  # the folders it made are gone again


def test_inspect_says_when_the_recorded_training_text_is_gone(tmp_path):
    from kerasrnn.apps.textgen.generation import export

    text = _text()
    (tmp_path / "train.txt").write_text(text)
    vocab = sorted(set(text))
    version = export(_latch_model(vocab), vocab, tmp_path / "saved_models",
                     source={"text": str(tmp_path / "train.txt"), "dataset": None})
    runner = CliRunner()
    result = runner.invoke(main, ["textgen", "inspect", "--model", version, "--chars", "200",
                                  "--out", tmp_path / "page"])
    assert result.exit_code == 0, result.output
    (tmp_path / "train.txt").unlink()
    result = runner.invoke(main, ["textgen", "inspect", "--model", version, "--out",
                                  tmp_path / "page2"])
    assert result.exit_code == 1 and "which is not there any more" in result.output
    assert "tiny_shakespeare" not in result.output


def test_inspect_reads_the_installed_held_out_text_of_tiny_shakespeare(tmp_path, monkeypatch):
    """kerasrnn installs tiny Shakespeare's held-out 10% (apps/data/): a
    model trained on tiny_shakespeare is inspected on it, with no --text and
    no download."""
    from kerasrnn.apps.common import bundled
    from kerasrnn.apps.textgen.generation import export

    held_out = _text(seed=3)
    vocab = sorted(set(_text() + held_out))
    version = export(_latch_model(vocab), vocab, tmp_path / "saved_models",
                     source={"text": None, "dataset": "tiny_shakespeare"})
    monkeypatch.setattr(bundled, "FOLDER", tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / bundled.SHAKESPEARE_HELD_OUT).write_text(held_out)
    result = CliRunner().invoke(main, ["textgen", "inspect", "--model", version, "--chars",
                                       "500", "--out", tmp_path / "page"])
    assert result.exit_code == 0, result.output
    assert ("text: the held-out 10% of tiny Shakespeare, installed with kerasrnn (the part of"
            " the model's text that its training held out)") in result.stderr.splitlines()
    # Read whole from its start: it is the held-out part already, not cut again.
    assert "read 500 characters" in result.stdout
    first_words = held_out.split(".")[0].split('"')[0]
    assert first_words and first_words in (tmp_path / "page" / "index.html").read_text()


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(page, fragment, *extra):
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               f"--user-data-dir={page.parent / 'chromium-profile'}", *extra,
               f"{page.as_uri()}#{fragment}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(_chromium() is None,
                    reason="Chromium is not installed: apt-get install chromium (.ci/run does)")
def test_the_page_in_a_real_browser_colours_the_text_by_the_unit(inspected):
    page = inspected["page"]
    dom = {}
    for unit in (0, 1):
        run = _browser(page, f"layer=0&unit={unit}", "--dump-dom",
                       "--virtual-time-budget=5000")
        assert run.returncode == 0, run.stderr[-2000:]
        dom[unit] = run.stdout
    assert 'data-ready="true"' in dom[0] and 'data-unit="0"' in dom[0]
    assert 'data-unit="1"' in dom[1]
    units_text = dom[0].split('id="units-text"')[1].split("</div>")[0]
    colours = re.findall(r'<span class="ch" data-i="\d+" style="background-color: ([^"]+);">',
                         units_text)
    assert len(colours) == len(inspected["text"])  # one element per character
    inside = text_inside(inspected["text"])
    # Unit 0 is red (1 after the tanh scaling) inside quotes, white outside.
    reds = [c for c, q in zip(colours, inside, strict=True) if q]
    whites = [c for c, q in zip(colours, inside, strict=True) if not q]
    assert all(_green(c) < 40 for c in reds) and all(_green(c) > 215 for c in whites)
    colours_1 = re.findall(r'style="background-color: ([^"]+);"',
                           dom[1].split('id="units-text"')[1].split("</div>")[0])
    assert colours_1 != colours  # another unit, other colours
    found = dom[0].split('id="found"')[1].split("</ol>")[0]
    assert found.count("<li>") >= 4 and 'href="#layer=0&amp;unit=0"' in found
    shot = page.parent / "screenshot.png"
    run = _browser(page, "layer=0&unit=0", f"--screenshot={shot}", "--window-size=1200,1600",
                   "--virtual-time-budget=5000")
    assert run.returncode == 0 and shot.stat().st_size > 20_000


def text_inside(text):
    from kerasrnn.apps.textgen.inspect import text_features

    return text_features(text)["inside double quotes"] > 0


def _green(colour):
    return int(re.match(r"rgb\((\d+), (\d+), (\d+)\)", colour).group(2))


HOSTILE = ('<!--<script>alert(1)</script>--> </script><script>x</script> & &amp; '
           '"quoted" {{data}} \u2028 <![CDATA[ ]]> <\\/ \\u003c')


@pytest.mark.skipif(_chromium() is None,
                    reason="Chromium is not installed: apt-get install chromium (.ci/run does)")
def test_any_text_and_model_name_show_as_written_in_a_real_browser(tmp_path):
    import html

    from kerasrnn.apps.textgen.inspect import analyse, write_page

    text = HOSTILE * 3
    vocab = sorted(set(text))
    ids = [vocab.index(c) for c in text]
    rng = np.random.default_rng(0)
    activations = {"state_names": ["0/h"], "gate_names": [],
                   "states": rng.normal(size=(1, len(text), 1, 4)),
                   "gates": np.zeros((1, len(text), 0, 4)),
                   "logits": rng.normal(size=(1, len(text), len(vocab)))}
    name = "runs/{{data}}/<b>model</b> & {{title}}"
    page = write_page(analyse(text, ids, vocab, activations), tmp_path / "index.html", name)
    run = _browser(page, "layer=0&unit=1", "--dump-dom", "--virtual-time-budget=5000")
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert 'data-ready="true"' in dom
    units_text = dom.split('id="units-text"')[1].split("</div>")[0]
    shown = re.findall(r'<span class="ch" data-i="\d+"[^>]*>(.*?)</span>', units_text, re.S)
    assert html.unescape("".join(shown)) == text
    heading = dom.split("<h1>")[1].split("</h1>")[0]
    assert html.unescape(re.sub(r"</?code>", "", heading)) == f"What the units of {name} track"
