"""`kerasrnn serving check` and `serving config`: the SavedModels as TF Serving sees them.

The work is kerasrnn.serving's (check.py loads every version in a process
that never imports kerasrnn; export.py writes models.config); this module
parses the options and prints.
"""

import json
import sys
from pathlib import Path

import click

from kerasrnn.apps.common import quiet
from kerasrnn.serving import check as check_module
from kerasrnn.serving.export import (
    DEFAULT_BASE_DIR,
    EXAMPLE_REQUEST,
    model_names,
    write_models_config,
)

# A request body longer than this (mnist's 28x28 pixels) is shown as the
# version's example request file, which curl sends with -d @FILE.
LONGEST_SHOWN_BODY = 200


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


def _default_directory():
    """./saved_models where it holds a model, else the pretrained models installed
    with kerasrnn."""
    from kerasrnn.apps.common.model_lookup import pretrained_dir

    if model_names(DEFAULT_BASE_DIR):
        return DEFAULT_BASE_DIR
    return pretrained_dir() or DEFAULT_BASE_DIR


def _print_examples(reports, base_dir, host):
    """Markdown for docs/serving.md: one curl request and its response per model.

    A long request body (mnist's image) is named by its file, relative to
    the folder that holds `base_dir`, rather than printed whole.
    """
    newest = {}
    for report in reports:
        model, version = Path(report["dir"]).relative_to(base_dir).parts
        if int(version) >= int(newest.get(model, ("", "-1"))[1]):
            newest[model] = (report, version)
    for model, (report, version) in sorted(newest.items()):
        click.echo(f"#### {model} (version {version})\n")
        for exchange in report["exchanges"]:
            body = f"'{json.dumps(exchange['request'])}'"
            if len(body) > LONGEST_SHOWN_BODY:
                body = "@" + (Path(base_dir).name / Path(model) / version
                              / EXAMPLE_REQUEST).as_posix()
            click.echo("```bash")
            click.echo(f"curl -s -X POST http://{host}/v1/models/{model}:predict \\")
            click.echo(f"  -d {body}")
            click.echo("```\n")
            click.echo("```json")
            click.echo(json.dumps(exchange["response"]))
            click.echo("```\n")


@click.group(cls=quiet.Group)
def serving():
    """Check SavedModels the way TensorFlow Serving loads them.

    \b
    Examples:
      kerasrnn serving check                  # ./saved_models, else the pretrained models
      kerasrnn serving check --print-examples # each model's REST request and response
      kerasrnn serving config --serving-root /srv/models
    """


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
    for leftover in check_module.staging_leftovers(directory):
        click.echo(f"warning: {leftover}: staging folder of an export that did not finish"
                   " (TF Serving ignores it; the next export of this model removes it)", err=True)
    good, problems = check_module.check(directory)
    if print_examples:
        _print_examples(good, directory, host)
    else:
        for report in good:
            _print_report(report, directory)
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
