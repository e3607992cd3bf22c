"""The package's surface: imports, version, the `kerasrnn` command."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import kerasrnn
from kerasrnn.cli import main


def test_version_is_the_distribution_version():
    assert kerasrnn.__version__ == importlib.metadata.version("kerasrnn")


def test_apps_are_installed_as_kerasrnn_apps():
    import kerasrnn.apps

    assert kerasrnn.apps.__file__.replace("\\", "/").endswith("apps/__init__.py")


def test_cli_help_and_version():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output and "--version" in result.output
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kerasrnn, version {kerasrnn.__version__}"


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("kerasrnn")
    for command in ([str(script)], [sys.executable, "-m", "kerasrnn"]):
        run = subprocess.run([*command, "--version"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == f"kerasrnn, version {kerasrnn.__version__}"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["no-such-app"])
    assert result.exit_code == 2
    assert "No such command" in result.output
