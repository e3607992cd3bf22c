"""Reading SavedModels the way TF Serving will: what `kerasrnn serving check` runs.

`check(directory)` loads every numbered version under `directory` in a
process that never imports kerasrnn (kerasrnn/serving/probe.py) and returns
its reports with the problems found, one line each, for the `kerasrnn
serving check` command to print.
"""

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

from google.protobuf import text_format

from kerasrnn.errors import UserError
from kerasrnn.serving.export import (
    CONFIG_NAME,
    STAGING_PREFIX,
    parse_models_config,
    version_dirs,
    versions,
)

PROBE = Path(__file__).with_name("probe.py")
PROBE_TIMEOUT_S = 600


def _config_problems(base_dir):
    """One line for each thing wrong with `base_dir/models.config`."""
    path = base_dir / CONFIG_NAME
    if not path.is_file():
        if path.exists():
            return [f"{path}: not a file (TF Serving's --model_config_file needs one)"]
        return [f"{path}: missing (TF Serving's --model_config_file needs it)"]
    try:
        config = parse_models_config(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        return [f"{path}: not UTF-8 text (byte {error.start})"]
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
    """Runs probe.py on `version_dirs` in a process without kerasrnn.

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
        raise UserError(f"the loader process failed (exit {run.returncode}): {last}")
    return reports


def staging_leftovers(directory):
    """Staging folders of exports that did not finish (TF Serving ignores them)."""
    return sorted(directory.glob(f"*/{STAGING_PREFIX}*"))


def check(directory):
    """`(reports that loaded, problems)` for every model version under `directory`.

    Raises UserError when `directory` holds no numbered version at all.
    """
    if not directory.is_dir():
        raise UserError(f"{directory}: no such folder")
    folders = [
        path
        for model in sorted(directory.iterdir())
        if model.is_dir()
        for path in version_dirs(model).values()
    ]
    if not folders:
        raise UserError(f"{directory}: no model versions (folders <model>/<number>)")
    problems = _config_problems(directory)
    good = []
    for report in run_probe(folders):
        if report["kerasrnn_imported"]:
            problems.append(f"{report['dir']}: the loader process imported kerasrnn")
        if report["ok"]:
            good.append(report)
        else:
            problems.append(report["error"])
    return good, problems
