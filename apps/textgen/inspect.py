"""`kerasrnn textgen inspect`: what each unit of a character model tracks.

After Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent
Networks" (2015): one pass of the model over a text (the SavedModel's
`activations` signature, a loop inside the graph) gives every state and gate
after every character. From them:

- **units found for you**: for each simple feature of the text (inside
  double quotes, in parentheses, the position in the line, ...), the unit
  whose value follows it most closely, by |Pearson r| over the characters;
- **gate saturation**: for each gate and unit, the fraction of steps where
  the gate is left-saturated (< 0.1) and right-saturated (> 0.9), the
  paper's scatter;
- **surprise**: each character's loss, -ln p(character | text before it),
  and the five likeliest characters the model expected there.

The unit values shown are the LSTM's cell state c (the paper's choice), or
the hidden state h of a GRU or SimpleRNN. `write_page` puts it all in one
self-contained HTML file (inspect.html, with the data inlined) and
`write_summary` draws a PNG of the found units and the gate scatter.
"""

import base64
import html
import json
import re
from pathlib import Path

import numpy as np

SATURATED_LOW, SATURATED_HIGH = 0.1, 0.9
PAGE_TEMPLATE = Path(__file__).with_name("inspect.html")


def _toggled(text, mark):
    """1 where a `mark`-delimited span is open after reading each character."""
    inside, out = False, []
    for ch in text:
        if ch == mark:
            inside = not inside
        out.append(inside)
    return out


def _single_quoted(text):
    """Inside single quotes of dialogue: an opening ' after a non-letter, closed by a
    ' followed by a non-letter; apostrophes inside words (don't, 'tis) are not quotes."""
    inside, out = False, []
    for i, ch in enumerate(text):
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if ch == "'":
            if not inside and not before.isalpha() and after.isalpha():
                inside = True
            elif inside and before.isalpha() and not after.isalpha():
                inside = False
        out.append(inside)
    return out


def _bracketed(text):
    depth, out = 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        out.append(depth > 0)
        if ch in ")]}":
            depth = max(0, depth - 1)
    return out


def _line_position(text):
    position, out = 0, []
    for ch in text:
        out.append(position)
        position = 0 if ch == "\n" else position + 1
    return out


def _upper_run(text):
    out = []
    for i, ch in enumerate(text):
        neighbours = text[max(0, i - 1) : i] + text[i + 1 : i + 2]
        out.append(ch.isupper() and any(c.isupper() for c in neighbours))
    return out


def _speaker_line(text):
    out = []
    for line in text.split("\n"):
        speaker = line.rstrip().endswith(":") and len(line.strip()) > 1
        out.extend([speaker] * (len(line) + 1))  # the newline belongs to its line
    return out[: len(text)]


FEATURES = {
    "inside double quotes": lambda t: _toggled(t, '"'),
    "inside single quotes (dialogue)": _single_quoted,
    "inside parentheses or brackets": _bracketed,
    "position in the line": _line_position,
    "start of a line": lambda t: [p == 0 for p in _line_position(t)],
    "inside a word": lambda t: [c.isalpha() for c in t],
    "upper-case run": _upper_run,
    "speaker line (ends with ':')": _speaker_line,
}


def text_features(text):
    """`{feature name: float array, one value per character}`."""
    return {name: np.asarray(f(text), dtype=np.float64) for name, f in FEATURES.items()}


def pearson(feature, values):
    """Pearson r of `feature` [n] with each column of `values` [n, units]; 0 where undefined."""
    f = feature - feature.mean()
    v = values - values.mean(axis=0)
    denominator = np.sqrt((f**2).sum() * (v**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (f @ v) / denominator
    return np.nan_to_num(r)


def found_units(text, unit_values):
    """For each feature, the unit that follows it best, ranked by |r|.

    Args:
        text: The characters, one per row of the values.
        unit_values: `{layer index: array [n, units]}`.

    Returns:
        A list of `{"feature", "layer", "unit", "r"}`, highest |r| first;
        features that never vary in the text are left out.
    """
    found = []
    for name, feature in text_features(text).items():
        if feature.std() == 0:
            continue
        best = None
        for layer, values in unit_values.items():
            r = pearson(feature, values)
            unit = int(np.abs(r).argmax())
            if best is None or abs(r[unit]) > abs(best["r"]):
                best = {"feature": name, "layer": layer, "unit": unit, "r": float(r[unit])}
        found.append(best)
    return sorted(found, key=lambda f: -abs(f["r"]))


def gate_saturation(gates, gate_names):
    """`{"0/f": {"left": [per unit], "right": [per unit]}}`: fractions of steps saturated."""
    return {
        name: {"left": (gates[:, k] < SATURATED_LOW).mean(axis=0).round(4).tolist(),
               "right": (gates[:, k] > SATURATED_HIGH).mean(axis=0).round(4).tolist()}
        for k, name in enumerate(gate_names)
    }


def surprise(logits, ids, vocab, top=5):
    """Each character's loss (nats; the first has none) and the `top` likeliest there."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    losses = [None] + [float(-log_p[t - 1, ids[t]]) for t in range(1, len(ids))]
    expected = [[]]
    for t in range(1, len(ids)):
        best = np.argsort(-log_p[t - 1])[:top]
        expected.append([[vocab[i], round(float(np.exp(log_p[t - 1, i])), 3)] for i in best])
    return losses, expected


def analyse(text, ids, vocab, activations):
    """Everything the page and the summary show, from one `activations` call's outputs.

    `ids` are the characters of `text` as the model read them.
    """
    state_names = [n.decode() if isinstance(n, bytes) else n for n in activations["state_names"]]
    gate_names = [n.decode() if isinstance(n, bytes) else n for n in activations["gate_names"]]
    states = activations["states"][0]  # [n, S, units]
    # The unit values of each layer: c where the layer has one, else h.
    shown = {}
    for k, name in enumerate(state_names):
        layer, kind = name.split("/")
        if kind == "c" or int(layer) not in shown:
            shown[int(layer)] = (kind, states[:, k])
    losses, expected = surprise(activations["logits"][0], ids, vocab)
    return {
        "text": text,
        "layers": [{"layer": layer, "state": kind, "values": values}
                   for layer, (kind, values) in sorted(shown.items())],
        "found": found_units(text, {layer: v for layer, (_, v) in shown.items()}),
        "gates": gate_saturation(activations["gates"][0], gate_names),
        "losses": losses,
        "expected": expected,
    }


def _encode_values(values):
    """A layer's values [n, units] as int8, scaled per unit to ±127, in base64."""
    scale = np.abs(values).max(axis=0)
    scale[scale == 0] = 1.0
    quantised = np.round(values / scale * 127).astype(np.int8)
    return base64.b64encode(quantised.tobytes()).decode(), scale.round(5).tolist()


def write_page(analysis, path, model_name):
    """The self-contained page: the template with the analysis inlined as JSON."""
    layers = []
    for layer in analysis["layers"]:
        data, scale = _encode_values(layer["values"])
        layers.append({"layer": layer["layer"], "state": layer["state"],
                       "units": int(layer["values"].shape[1]), "data": data, "scale": scale})
    payload = {
        "model": model_name, "text": analysis["text"], "layers": layers,
        "found": analysis["found"], "gates": analysis["gates"],
        "losses": analysis["losses"], "expected": analysis["expected"],
    }
    # Inside a <script>, "</script>" ends it and "<!--" changes how the rest
    # is read: no "<" (nor ">" or "&") may reach the page raw. JSON writes
    # them inside strings as \u003c-style escapes, which JSON.parse reads back.
    data = json.dumps(payload, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        data = data.replace(raw, escaped)
    values = {"title": html.escape(model_name), "data": data}
    # One pass, so that a model path holding "{{data}}" stays as written.
    page = re.sub(r"\{\{(title|data)\}\}", lambda m: values[m.group(1)],
                  PAGE_TEMPLATE.read_text(encoding="utf-8"))
    path.write_text(page, encoding="utf-8")
    return path


def write_summary(analysis, path):
    """A PNG: the found units (|r| by feature) and the gate saturation scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found, gates = analysis["found"], analysis["gates"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = [f"{f['feature']}\nlayer {f['layer']}, unit {f['unit']}" for f in found]
    left.barh(range(len(found)), [abs(f["r"]) for f in found], color="#b2182b")
    left.set_yticks(range(len(found)), labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("|Pearson r| of the unit with the feature")
    left.set_title("Units found for each text feature")
    for name, stats in gates.items():
        right.scatter(stats["left"], stats["right"], s=6, alpha=0.6, label=f"layer {name}")
    right.plot([0, 1], [1, 0], color="#bbb", linewidth=0.8)
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.set_xlabel(f"fraction of steps left-saturated (< {SATURATED_LOW})")
    right.set_ylabel(f"fraction right-saturated (> {SATURATED_HIGH})")
    right.set_title("Gate saturation, one point per unit")
    if gates:
        right.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
