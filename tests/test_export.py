"""Versioned, atomic SavedModel export and the TF Serving check."""

import multiprocessing
import os
import signal
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn import LSTMCell
from kerasrnn.apps.cli import main
from kerasrnn.serving.export import (
    export_version,
    models_config,
    parse_models_config,
    versions,
)
from kerasrnn.serving.probe import ProbeError, outputs_to_response, request_to_inputs


def _tiny_model():
    inputs = keras.Input((4, 3), name="sequence")
    outputs = keras.layers.Dense(2)(keras.layers.RNN(LSTMCell(5))(inputs))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One tiny model exported once: tests copy it instead of re-exporting."""
    base = tmp_path_factory.mktemp("saved_models")
    model = _tiny_model()
    request = {"instances": np.zeros((2, 4, 3)).tolist()}
    path = export_version(
        lambda p: model.export(p, format="tf_saved_model", verbose=False),
        "tiny",
        base_dir=base,
        example_request=request,
    )
    return model, path


def _copy_writer(source):
    import shutil

    return lambda target: shutil.copytree(source, target, dirs_exist_ok=True)


def test_export_takes_the_next_version_and_writes_models_config(tmp_path, exported):
    _, source = exported
    first = export_version(_copy_writer(source), "tiny", base_dir=tmp_path)
    second = export_version(_copy_writer(source), "tiny", base_dir=tmp_path)
    other = export_version(_copy_writer(source), "other", base_dir=tmp_path, serving_root="/srv")
    assert (first.name, second.name, other.name) == ("1", "2", "1")
    assert (first / "saved_model.pb").is_file()
    config = parse_models_config((tmp_path / "models.config").read_text())
    entries = [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config]
    assert entries == [("other", "/srv/other", "tensorflow"), ("tiny", "/srv/tiny", "tensorflow")]
    # Readable by a server running as another user, as far as the umask allows
    # (mkdtemp alone makes it 0700).
    umask = os.umask(0)
    os.umask(umask)
    assert first.stat().st_mode & 0o777 == 0o777 & ~umask
    # Nothing but the versions is left beside them.
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["1", "2"]


def test_serving_root_is_set_once_and_kept_by_later_exports(tmp_path, exported):
    _, source = exported
    export_version(_copy_writer(source), "tiny", base_dir=tmp_path)
    result = CliRunner().invoke(main, ["serving", "config", str(tmp_path), "--serving-root",
                                       "/srv/tf"])
    assert result.exit_code == 0, result.output
    export_version(_copy_writer(source), "other", base_dir=tmp_path)
    config = parse_models_config((tmp_path / "models.config").read_text())
    assert [c.base_path for c in config.model_config_list.config] == [
        "/srv/tf/other", "/srv/tf/tiny",
    ]


def test_models_config_round_trips_through_the_protos():
    text = models_config(["mnist", "textgen"], serving_root="/models")
    assert 'name: "mnist"' in text and 'base_path: "/models/textgen"' in text
    parsed = parse_models_config(text)
    assert [c.name for c in parsed.model_config_list.config] == ["mnist", "textgen"]
    assert models_config(["mnist", "textgen"]) == text


def test_a_failed_write_leaves_no_version(tmp_path):
    def crash(path):
        (Path(path) / "saved_model.pb").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        export_version(crash, "tiny", base_dir=tmp_path)
    assert list((tmp_path / "tiny").iterdir()) == []


def _export_then_die(base, source, ready):
    def write(path):
        _copy_writer(source)(path)
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)  # killed between the write and the rename

    export_version(write, "tiny", base_dir=base)


def test_a_process_killed_before_the_rename_leaves_no_numeric_folder(tmp_path, exported):
    _, source = exported
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    ready = ctx.Event()
    child = ctx.Process(target=_export_then_die, args=(tmp_path, source, ready))
    child.start()
    child.join(120)
    assert ready.is_set() and child.exitcode == -signal.SIGKILL
    leftovers = list((tmp_path / "tiny").iterdir())
    assert leftovers and not any(p.name.isdigit() for p in leftovers)
    assert versions(tmp_path / "tiny") == []


def _export_copy(base, source):
    return str(export_version(_copy_writer(source), "tiny", base_dir=base))


def test_concurrent_exports_get_distinct_versions(tmp_path, exported):
    _, source = exported
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    with ctx.Pool(4) as pool:
        made = pool.starmap(_export_copy, [(tmp_path, source)] * 6)
    assert sorted(Path(p).name for p in made) == ["1", "2", "3", "4", "5", "6"]
    assert versions(tmp_path / "tiny") == [1, 2, 3, 4, 5, 6]
    for p in made:
        assert (Path(p) / "saved_model.pb").is_file()


def test_rest_row_format_round_trip():
    import tensorflow as tf

    specs = {"images": (tf.float32, [-1, 2])}
    inputs = request_to_inputs({"instances": [[1, 2], [3, 4]]}, specs)
    assert inputs["images"].dtype == np.float32 and inputs["images"].shape == (2, 2)
    response = outputs_to_response(
        {"classes": np.array([1, 0]), "probabilities": np.array([[0.1, 0.9], [0.8, 0.2]])},
        row_format=True,
    )
    assert response == {
        "predictions": [
            {"classes": 1, "probabilities": [0.1, 0.9]},
            {"classes": 0, "probabilities": [0.8, 0.2]},
        ]
    }
    # Named instances, as TF Serving takes them for several inputs.
    specs2 = {"a": (tf.float32, [-1]), "b": (tf.string, [-1])}
    inputs = request_to_inputs({"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}, specs2)
    assert inputs["a"].tolist() == [1.0, 2.0] and inputs["b"].tolist() == [b"x", b"y"]
    single = outputs_to_response({"y": np.array([1.5, 2.5])}, row_format=True)
    assert single == {"predictions": [1.5, 2.5]}


def test_rest_column_format_round_trip():
    import tensorflow as tf

    specs = {
        "prompt": (tf.string, [-1]),
        "length": (tf.int32, []),
        "temperature": (tf.float32, []),
    }
    body = {"inputs": {"prompt": ["ROMEO:"], "length": 5, "temperature": 0.5}}
    inputs = request_to_inputs(body, specs)
    assert inputs["prompt"].tolist() == [b"ROMEO:"]
    assert inputs["length"].dtype == np.int32 and inputs["length"].shape == ()
    response = outputs_to_response({"text": np.array([b"ROMEO: hi"], dtype=object)}, False)
    assert response == {"outputs": ["ROMEO: hi"]}
    both = outputs_to_response({"a": np.array([1]), "b": np.array([[2.0]])}, row_format=False)
    assert both == {"outputs": {"a": [1], "b": [[2.0]]}}
    # Scalars cannot go in the row format: said, not crashed on.
    with pytest.raises(ProbeError, match="column format"):
        outputs_to_response({"a": np.array(1), "b": np.array([2])}, row_format=True)
    with pytest.raises(ProbeError, match="instances"):
        request_to_inputs({"signature": 1}, specs)


def _check(directory, *args):
    return CliRunner().invoke(main, ["serving", "check", str(directory), *args])


def test_check_runs_the_model_like_tf_serving(tmp_path, exported, monkeypatch):
    from kerasrnn.serving import check as check_module

    # Both commands below print the answer of one loader process (a
    # TensorFlow start-up): the second is given the first one's.
    answers, load_in_a_process = [], check_module.check

    def check_once(directory):
        if not answers:
            answers.append(load_in_a_process(directory))
        return answers[0]

    monkeypatch.setattr(check_module, "check", check_once)
    model, source = exported
    export_version(_copy_writer(source), "tiny", base_dir=tmp_path)
    result = _check(tmp_path)
    assert result.exit_code == 0, result.output
    assert "tiny/1: loads with the session loader" in result.output
    assert "signature serving_default" in result.output
    assert "inputs:  sequence float32 [-1, 4, 3]" in result.output
    # The printed REST response is the Keras model's own prediction.
    response_line = next(
        line for line in result.output.splitlines() if line.strip().startswith("response:")
    )
    import json

    predictions = json.loads(response_line.split("response:", 1)[1])["predictions"]
    np.testing.assert_allclose(
        predictions, model.predict(np.zeros((2, 4, 3)), verbose=0), atol=1e-5
    )
    examples = _check(tmp_path, "--print-examples")
    assert examples.exit_code == 0, examples.output
    assert "curl -s -X POST http://localhost:8501/v1/models/tiny:predict" in examples.output
    assert response_line.split("response:", 1)[1].strip() in examples.output


def test_check_reports_each_broken_version_in_one_line_and_checks_the_rest(tmp_path, exported):
    """Every kind of breakage at once, in one serving root: one check (one
    loader process) finds each, in a line of its own, and still loads the
    good version beside them."""
    import tensorflow as tf

    source = exported[1]
    export_version(_copy_writer(source), "good", base_dir=tmp_path)
    truncated = export_version(_copy_writer(source), "truncated", base_dir=tmp_path)
    pb = truncated / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    novariables = export_version(_copy_writer(source), "novariables", base_dir=tmp_path)
    for f in (novariables / "variables").iterdir():
        f.unlink()
    export_version(_copy_writer(source), "nopb", base_dir=tmp_path)
    (tmp_path / "nopb" / "2").mkdir()

    class NoDefault(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": 2 * x}

    class Failing(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            tf.debugging.assert_greater(x, 1.0, message="x must exceed 1")
            return {"y": 2 * x}

    nodefault, failing = NoDefault(), Failing()
    export_version(
        lambda p: tf.saved_model.save(nodefault, p, signatures={"double": nodefault.double}),
        "nodefault", base_dir=tmp_path)
    export_version(
        lambda p: tf.saved_model.save(failing, p, signatures={"serving_default": failing.serve}),
        "failing", base_dir=tmp_path)
    names = ["good", "truncated", "novariables", "nopb", "nodefault", "failing"]
    (tmp_path / "models.config").write_text(models_config([*names, "ghost"]))

    result = _check(tmp_path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    expected = [
        "model 'ghost' (base_path /models/ghost) has no folder",
        "truncated/1: TF Serving's loader cannot load it",
        "novariables/1: TF Serving's loader cannot load it",
        "nopb/2: no saved_model.pb",
        "nodefault/1: no serving_default signature",
        "failing/1: serving_default fails to run (InvalidArgumentError",
    ]
    for part in expected:
        assert sum(part in line for line in errors) == 1, (part, result.output)
    assert len(errors) == len(expected), result.output
    assert "good/1: loads with the session loader" in result.output


def test_check_on_a_missing_folder_is_one_line(tmp_path):
    result = _check(tmp_path / "nowhere")
    assert result.exit_code != 0
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


REPO = Path(__file__).resolve().parents[1]


def _fenced_blocks(text, language):
    """The contents of the ```language blocks of a Markdown text, in order."""
    parts = text.split(f"```{language}\n")[1:]
    return [part.split("```", 1)[0].strip() for part in parts]


def test_bundled_models_load_like_tf_serving_and_match_the_docs():
    """saved_models/ passes the check; docs/serving.md's examples are its output,
    and the README's example is one of them."""
    import json

    result = _check(REPO / "saved_models", "--print-examples")
    assert result.exit_code == 0, result.output
    serving = (REPO / "docs" / "serving.md").read_text()
    readme = (REPO / "README.md").read_text().split("## Serving", 1)[1].split("\n## ", 1)[0]
    for language in ("bash", "json"):
        for block in _fenced_blocks(readme, language):
            if "curl" in block or block.startswith("{"):
                assert block in _fenced_blocks(serving, language), block

    def headings(text):  # "mnist (version 1)": the versions documented
        return [line.lstrip("#").strip() for line in text.splitlines()
                if line.startswith("#") and "(version" in line]

    assert headings(serving) == headings(result.output)
    for language in ("bash", "json"):
        printed, documented = _fenced_blocks(result.output, language), []
        documented = [b for b in _fenced_blocks(serving, language) if "curl" in b or "{" in b]
        documented = [b for b in documented if not b.startswith("docker")]
        assert len(documented) == len(printed) >= 2, (language, documented)
        for doc, now in zip(documented, printed, strict=True):
            if language == "bash":
                assert doc == now  # the requests: exactly what the check sent
                continue
            doc, now = json.loads(doc), json.loads(now)
            if "predictions" in now:  # mnist: same class, probabilities to float noise
                assert [p["classes"] for p in doc["predictions"]] == [
                    p["classes"] for p in now["predictions"]
                ]
                np.testing.assert_allclose(
                    [p["probabilities"] for p in doc["predictions"]],
                    [p["probabilities"] for p in now["predictions"]], atol=1e-4,
                )
            else:  # textgen: the prompt and the length of the continuation
                assert [len(t) for t in doc["outputs"]] == [len(t) for t in now["outputs"]]
                assert all(t.startswith("ROMEO:") for t in now["outputs"])


@pytest.mark.parametrize("make_bad, message", [
    (lambda path: path.mkdir(), "not a file"),
    (lambda path: path.write_bytes(b"model_config_list {\xff\xfe}"), "not UTF-8 text"),
])
def test_a_bad_models_config_stops_the_export_before_a_version_is_published(
        tmp_path, exported, make_bad, message):
    from kerasrnn.errors import UserError

    make_bad(tmp_path / "models.config")
    with pytest.raises(UserError, match=message):
        export_version(_copy_writer(exported[1]), "tiny", base_dir=tmp_path)
    assert not (tmp_path / "tiny").exists()
    # `serving check` says the same in one line.
    _copy_writer(exported[1])(tmp_path / "tiny" / "1")
    result = _check(tmp_path)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_versions_are_folders_named_by_a_base_10_integer(tmp_path, exported):
    """TF Serving's rule, read by one function for every command: "007" is
    version 7 at its own path; "①" (a digit to `str.isdigit`, not to `int`),
    a plain file and a link to nowhere are not versions, and an export steps
    past the numbers they hold."""
    import shutil

    from kerasrnn.serving.export import latest_version_dir, version_dirs

    _, source = exported
    model_dir = tmp_path / "tiny"
    shutil.copytree(source, model_dir / "007")
    (model_dir / "①").mkdir()
    (model_dir / "8").write_text("not a model")
    (model_dir / "9").symlink_to(model_dir / "9")  # a link loop
    assert version_dirs(model_dir) == {7: model_dir / "007"}
    assert versions(model_dir) == [7] and latest_version_dir(model_dir) == model_dir / "007"
    new = export_version(_copy_writer(source), "tiny", base_dir=tmp_path)
    assert new == model_dir / "10" and versions(model_dir) == [7, 10]
    config = parse_models_config((tmp_path / "models.config").read_text())
    assert [c.name for c in config.model_config_list.config] == ["tiny"]
    result = CliRunner().invoke(main, ["serving", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "tiny/007: loads" in result.output and "tiny/10: loads" in result.output
