"""The README's two commands stay true: CI runs the test command word for word, the main job exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_the_readme_test_command_verbatim():
    main_cmd, test_cmd = readme_commands()[:2]
    assert main_cmd.endswith("python -m experiments.lesson4")
    assert "pytest" in test_cmd
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci_lines
    assert any(line.startswith("ruff check") for line in ci_lines[: ci_lines.index(test_cmd)])
    assert (ROOT / "experiments" / "lesson4.py").exists()
