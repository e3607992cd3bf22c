"""`kerasrnn serving check`: read the SavedModels the way TF Serving will."""

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

import click
from google.protobuf import text_format

from kerasrnn import quiet
from kerasrnn.serving.export import (
    CONFIG_NAME,
    DEFAULT_BASE_DIR,
    STAGING_PREFIX,
    model_names,
    parse_models_config,
    pretrained_dir,
    versions,
    write_models_config,
)

PROBE = Path(__file__).with_name("probe.py")
PROBE_TIMEOUT_S = 600


def _config_problems(base_dir):
    """One line for each thing wrong with `base_dir/models.config`."""
    path = base_dir / CONFIG_NAME
    if not path.is_file():
        return [f"{path}: missing (TF Serving's --model_config_file needs it)"]
    try:
        config = parse_models_config(path.read_text())
    except text_format.ParseError as error:
        return [f"{path}: not a ModelServerConfig ({error})"]
    problems = []
    for entry in config.model_config_list.config:
        folder = base_dir / PurePosixPath(entry.base_path).name
        if not folder.is_dir():
            problems.append(
                f"{path}: model '{entry.name}' (base_path {entry.base_path}) has no folder {folder}"
            )
        elif not versions(folder):
            problems.append(f"{path}: model '{entry.name}': {folder} holds no numbered version")
    return problems


def run_probe(version_dirs):
    """Runs serving_probe.py on `version_dirs` in a process without kerasrnn.

    The probe's source is passed with `-c` rather than as a file, so that the
    folder of this package does not land on the child's `sys.path`.
    """
    if not version_dirs:
        return []
    run = subprocess.run(
        [sys.executable, "-c", PROBE.read_text(), *map(str, version_dirs)],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
    )
    reports = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or len(reports) != len(version_dirs):
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise click.ClickException(f"the loader process failed (exit {run.returncode}): {last}")
    return reports


def _describe(tensors):
    return "; ".join(
        f"{name} {spec['dtype']} {spec['shape'] if spec['shape'] is not None else '(any shape)'}"
        for name, spec in tensors.items()
    )


def _print_report(report, base_dir):
    name = Path(report["dir"]).relative_to(base_dir)
    click.echo(f"{name}: loads with the session loader (tag serve)")
    for key, signature in report["signatures"].items():
        click.echo(f"  signature {key}")
        click.echo(f"    inputs:  {_describe(signature['inputs'])}")
        click.echo(f"    outputs: {_describe(signature['outputs'])}")
    for exchange in report["exchanges"]:
        click.echo(f"  request:  {json.dumps(exchange['request'])}")
        click.echo(f"  response: {json.dumps(exchange['response'])}")


def _print_examples(reports, base_dir, host):
    """Markdown for the README: one curl request and its response per model."""
    newest = {}
    for report in reports:
        model, version = Path(report["dir"]).relative_to(base_dir).parts
        if int(version) >= int(newest.get(model, ("", "-1"))[1]):
            newest[model] = (report, version)
    for model, (report, version) in sorted(newest.items()):
        click.echo(f"#### {model} (version {version})\n")
        for exchange in report["exchanges"]:
            body = json.dumps(exchange["request"])
            click.echo("```bash")
            click.echo(f"curl -s -X POST http://{host}/v1/models/{model}:predict \\")
            click.echo(f"  -d '{body}'")
            click.echo("```\n")
            click.echo("```json")
            click.echo(json.dumps(exchange["response"]))
            click.echo("```\n")


@click.group(cls=quiet.Group)
def serving():
    """Check SavedModels the way TensorFlow Serving loads them."""


def _default_directory():
    """./saved_models where it holds a model, else the pretrained models installed with kerasrnn."""
    if model_names(DEFAULT_BASE_DIR):
        return DEFAULT_BASE_DIR
    return pretrained_dir() or DEFAULT_BASE_DIR


@serving.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--print-examples",
    is_flag=True,
    help="Print a curl request and its JSON response per model, as Markdown.",
)
@click.option(
    "--host",
    default="localhost:8501",
    show_default=True,
    help="The REST address the printed curl commands use.",
)
def check(directory, print_examples, host):
    """Load every model version under DIRECTORY as TF Serving does.

    DIRECTORY defaults to ./saved_models where it holds a model, else the
    pretrained models installed with kerasrnn.

    In a separate process that never imports kerasrnn, each numbered version is
    loaded with the session-based SavedModel loader under tag `serve`; its
    signatures are listed, and `serving_default` runs on the version's example
    REST request (assets.extra/example_request.json, or zeros of the right
    shape), which is turned into the signature's inputs and the outputs back
    into the REST response, both printed. models.config is parsed with the
    tensorflow-serving-api protos and each entry's folder must exist.

    Exits 1 with one line per problem: a missing or unparsable models.config
    or one naming a missing folder, a version with no saved_model.pb, one the
    loader rejects (a partial model), no serving_default, or a signature that
    fails to run. A staging folder left by a killed export is a warning (the
    next export of that model removes it).

    \b
    Example:
      kerasrnn serving check saved_models
    """
    if directory is None:
        directory = _default_directory()
        click.echo(f"checking {directory}", err=True)
    if not directory.is_dir():
        raise click.ClickException(f"{directory}: no such folder")
    version_dirs = [
        directory / model.name / str(v)
        for model in sorted(directory.iterdir())
        if model.is_dir()
        for v in versions(model)
    ]
    if not version_dirs:
        raise click.ClickException(f"{directory}: no model versions (folders <model>/<number>)")
    problems = _config_problems(directory)
    for leftover in sorted(directory.glob(f"*/{STAGING_PREFIX}*")):
        click.echo(f"warning: {leftover}: staging folder of an export that did not finish"
                   " (TF Serving ignores it; the next export of this model removes it)", err=True)
    reports = run_probe(version_dirs)
    good = []
    for report in reports:
        if report["kerasrnn_imported"]:
            problems.append(f"{report['dir']}: the loader process imported kerasrnn")
        if report["ok"]:
            good.append(report)
            if not print_examples:
                _print_report(report, directory)
        else:
            problems.append(report["error"])
    if print_examples:
        _print_examples(good, directory, host)
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(1)


@serving.command()
@click.argument(
    "directory",
    default=str(DEFAULT_BASE_DIR),
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--serving-root",
    help="Where the server sees DIRECTORY. Default: the root models.config uses, else /models"
    " (where the official tensorflow/serving image mounts models).",
)
def config(directory, serving_root):
    """Rewrite DIRECTORY/models.config (default saved_models) for every model in it.

    Exports keep the serving root the file already uses, so setting it once
    here is enough.

    \b
    Example:
      kerasrnn serving config saved_models --serving-root /models
    """
    path = write_models_config(directory, serving_root)
    click.echo(path.read_text().rstrip())
    click.echo(f"wrote {path}", err=True)
