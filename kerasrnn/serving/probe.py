"""Loads SavedModels the way TensorFlow Serving does and runs them on a REST body.

`kerasrnn serving check` runs this file as a script in a process of its own,
which imports TensorFlow and NumPy only, never kerasrnn: what works here works
in a server that has never heard of kerasrnn. It loads each version with the
session-based loader (`tf.compat.v1.saved_model.loader.load`, tag `serve`,
the loader of TF Serving and `saved_model_cli run`), lists the signatures,
turns a REST request body into the `serving_default` inputs, runs it, and
turns the outputs back into the REST response body, following TF Serving's
REST API: row format `{"instances": [...]}` answers `{"predictions": [...]}`,
column format `{"inputs": ...}` answers `{"outputs": ...}`.

    python probe.py VERSION_DIR...    # one JSON report per line
"""

import json
import sys
from pathlib import Path

import numpy as np

# The same path as kerasrnn.serving.export.EXAMPLE_REQUEST, written again because this
# file must not import kerasrnn.
EXAMPLE_REQUEST = Path("assets.extra") / "example_request.json"


class ProbeError(Exception):
    """A problem with one version, said in one line."""


def _numpy_dtype(tf_dtype):
    return object if tf_dtype.name == "string" else tf_dtype.as_numpy_dtype


def _as_array(value, spec):
    dtype, _ = spec
    if dtype.name == "string":
        encode = np.vectorize(lambda s: s.encode() if isinstance(s, str) else s, otypes=[object])
        return encode(np.asarray(value, dtype=object))
    return np.asarray(value, dtype=_numpy_dtype(dtype))


def request_to_inputs(body, specs):
    """The signature's input arrays from a REST request body.

    Args:
        body: The request as parsed JSON: `{"instances": [...]}` (row format)
            or `{"inputs": ...}` (column format).
        specs: `{input name: (tf.DType, shape list)}` of the signature.

    Returns:
        `{input name: numpy array}`.
    """
    names = sorted(specs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ProbeError('"instances" must be a non-empty list')
        if all(isinstance(i, dict) for i in instances):
            missing = [n for n in names if any(n not in i for i in instances)]
            if missing:
                raise ProbeError(f"instances lack the input(s) {missing}")
            return {n: _as_array([i[n] for i in instances], specs[n]) for n in names}
        if len(names) != 1:
            raise ProbeError(f"the signature takes {names}: each instance must be an object")
        return {names[0]: _as_array(instances, specs[names[0]])}
    if "inputs" in body:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and set(inputs) <= set(names) and inputs:
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ProbeError(f"inputs lack {missing}")
            return {n: _as_array(inputs[n], specs[n]) for n in names}
        if len(names) != 1:
            raise ProbeError(f"the signature takes {names}: \"inputs\" must name them")
        return {names[0]: _as_array(inputs, specs[names[0]])}
    raise ProbeError('a request body needs "instances" (row format) or "inputs" (column format)')


def _jsonable(array):
    array = np.asarray(array)
    if array.dtype == object:
        decode = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])
        return decode(array).tolist() if array.size else array.tolist()
    return array.tolist()


def outputs_to_response(outputs, row_format):
    """The REST response body for the signature's output arrays."""
    names = sorted(outputs)
    if row_format:
        batch = {np.shape(outputs[n])[0] if np.ndim(outputs[n]) else None for n in names}
        if len(batch) != 1 or None in batch:
            raise ProbeError("outputs do not share a batch dimension: use the column format")
        if len(names) == 1:
            return {"predictions": _jsonable(outputs[names[0]])}
        (size,) = batch
        return {
            "predictions": [{n: _jsonable(outputs[n][i]) for n in names} for i in range(size)]
        }
    if len(names) == 1:
        return {"outputs": _jsonable(outputs[names[0]])}
    return {"outputs": {n: _jsonable(outputs[n]) for n in names}}


def _synthetic_request(specs):
    """A column-format request of zeros (ones for integers) of the right shapes."""
    inputs = {}
    for name, (dtype, shape) in specs.items():
        shape = [1 if d is None or d < 0 else d for d in shape]
        if dtype.name == "string":
            inputs[name] = np.full(shape, "a", dtype=object).tolist()
        elif dtype.is_integer:
            inputs[name] = np.ones(shape, dtype=int).tolist()
        else:
            inputs[name] = np.zeros(shape).tolist()
    return {"inputs": inputs}


def probe(version_dir):
    """Loads one version and runs `serving_default`; returns a report dict."""
    import tensorflow as tf

    version_dir = Path(version_dir)
    if not (version_dir / "saved_model.pb").is_file():
        raise ProbeError(f"{version_dir}: no saved_model.pb (not a SavedModel, or a partial one)")
    example_path = version_dir / EXAMPLE_REQUEST
    with tf.compat.v1.Graph().as_default(), tf.compat.v1.Session() as session:
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(
                session, ["serve"], str(version_dir)
            )
        except Exception as error:  # the loader's errors are many and deep
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ProbeError(
                f"{version_dir}: TF Serving's loader cannot load it "
                f"({type(error).__name__}: {first_line[:200]})"
            ) from None
        signatures = {}
        for key, signature in sorted(meta_graph.signature_def.items()):
            if key.startswith("__"):  # e.g. __saved_model_init_op
                continue

            def describe(infos):
                return {
                    name: {
                        "dtype": tf.dtypes.as_dtype(info.dtype).name,
                        "shape": None
                        if info.tensor_shape.unknown_rank
                        else [d.size for d in info.tensor_shape.dim],
                    }
                    for name, info in sorted(infos.items())
                }

            signatures[key] = {
                "inputs": describe(signature.inputs),
                "outputs": describe(signature.outputs),
            }
        if "serving_default" not in meta_graph.signature_def:
            raise ProbeError(f"{version_dir}: no serving_default signature")
        serving = meta_graph.signature_def["serving_default"]
        specs = {
            name: (
                tf.dtypes.as_dtype(info.dtype),
                None
                if info.tensor_shape.unknown_rank
                else [d.size for d in info.tensor_shape.dim],
            )
            for name, info in serving.inputs.items()
        }
        if example_path.is_file():
            requests = json.loads(example_path.read_text())
        else:
            requests = _synthetic_request(specs)
        exchanges = []
        for request in requests if isinstance(requests, list) else [requests]:
            inputs = request_to_inputs(request, specs)
            feed = {serving.inputs[n].name: value for n, value in inputs.items()}
            fetch = {n: info.name for n, info in serving.outputs.items()}
            try:
                outputs = session.run(fetch, feed)
            except Exception as error:
                first_line = str(error).strip().splitlines()[0]
                raise ProbeError(
                    f"{version_dir}: serving_default fails to run "
                    f"({type(error).__name__}: {first_line[:200]})"
                ) from None
            response = outputs_to_response(outputs, row_format="instances" in request)
            exchanges.append({"request": request, "response": response})
    return {"signatures": signatures, "exchanges": exchanges}


def main(argv):
    for version_dir in argv:
        try:
            report = {"dir": version_dir, "ok": True, **probe(version_dir)}
        except ProbeError as error:
            report = {"dir": version_dir, "ok": False, "error": str(error)}
        report["kerasrnn_imported"] = "kerasrnn" in sys.modules
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
