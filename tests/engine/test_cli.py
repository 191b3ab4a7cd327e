import subprocess
import sys

from sparsevit.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 1
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_command_fails():
    proc = subprocess.run([sys.executable, "-m", "sparsevit", "--json", "nonexistent"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "invalid choice" in proc.stderr


def test_area_with_negative_coordinates_is_not_taken_for_an_option():
    from sparsevit.cli import _join_negative_values
    assert _join_negative_values(["predict", "x.tif", "--area", "-0.78,38.1,-0.7,38.2", "--out", "o"]) == \
        ["predict", "x.tif", "--area=-0.78,38.1,-0.7,38.2", "--out", "o"]
    assert _join_negative_values(["--area", "--out"]) == ["--area", "--out"]


def test_a_light_command_starts_without_importing_torch():
    """Inspect in the plugin runs ``info``: it must not wait seconds for torch to import."""
    code = ("import sys; from sparsevit.cli import build_parser; "
            "build_parser(['--json', 'info', 'x.tif']); print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
    # every command is still offered when none is named
    helptext = subprocess.run([sys.executable, "-m", "sparsevit", "--help"], capture_output=True,
                              text=True, check=True).stdout
    assert "predict" in helptext and "export-model" in helptext
