import json
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
