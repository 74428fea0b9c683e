"""The README's two commands stay true: CI runs exactly its test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick_start, flags=re.S)


def test_readme_has_install_and_test_commands():
    commands = readme_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert main_job.startswith("python -m pip install -e .") and "studies/" in main_job
    assert tests.startswith('python -m pip install -e ".[test]"') and "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_main_job_script_exists():
    script = readme_commands()[0].split("&&", 1)[1].split()[1]
    assert (ROOT / script).is_file(), script


# ------------------------------------------- every documented command runs, in order

DOCUMENTS = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md"))]

#: Documented commands the test does not run, by how they start, and why.
NOT_RUN = {
    'python -m pip install -e ".[test]"': "installs the package and runs the test suite",
    "python -m pip install -e .": "installs the package (already installed here)",
    "python -m pytest": "the test suite itself",
    "ruff ": "the linter (CI runs it)",
    "bash .ci/run": "CI itself",
    "python benchmarks/": "benchmarks run on demand: minutes on a million rows",
    "dask ": "starts a Dask scheduler or workers, which run until stopped",
}
#: Documented commands the test does not run, by what they contain, and why.
NOT_RUN_CONTAINING = {
    "--dask ": "needs a Dask scheduler (tests/test_dask.py runs tune/cv --dask on a LocalCluster)",
    "@db-host": "needs a PostgreSQL server (tests/search/test_postgres.py starts one)",
}
#: Run after this prefix (the main job after its install).
STRIP = "python -m pip install -e . && "


def shell_blocks(document: str) -> list[str]:
    text = (ROOT / document).read_text()
    return re.findall(r"```(?:console|bash|sh|shell)\n(.*?)```", text, flags=re.S)


def block_commands(block: str) -> list[str]:
    """The commands of a block: ``$ ``-prompted lines (with ``\\`` continuations), or
    every line of a prompt-less block; output lines and comment lines are not commands."""
    lines = block.splitlines()
    prompted = any(line.startswith("$ ") for line in lines)
    commands: list[str] = []
    continuing = False
    for line in lines:
        if continuing:
            commands[-1] = commands[-1][:-1] + " " + line.strip()
        elif prompted and line.startswith("$ "):
            commands.append(line[2:].strip())
        elif not prompted and line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
        else:
            continue
        continuing = commands[-1].endswith("\\")
    return commands


def documented_commands(document: str) -> list[str]:
    return [c for block in shell_blocks(document) for c in block_commands(block)]


def runs(command: str) -> bool:
    if any(marker in command for marker in NOT_RUN_CONTAINING):
        return False
    return not any(
        command.startswith(prefix) for prefix in NOT_RUN if not command.startswith(STRIP)
    )


def shrink(command: str) -> str:
    """The same command with small sizes: 2 trials, 2 folds, 2 epochs (a test, not a study)."""
    command = command.removeprefix(STRIP)
    command = re.sub(r"--trials \d+", "--trials 2", command)
    command = re.sub(r"--cv \d+", "--cv 2", command)
    command = re.sub(r"--outer \d+", "--outer 2", command)
    command = re.sub(r"max_epochs=\d+", "max_epochs=2", command)
    command = command.replace("python studies/", f"python {ROOT}/studies/")
    if "/studies/" in command:
        command = command.replace(".py ", ".py --max-epochs 2 ", 1)
    return command


def test_every_documented_command_is_run_or_skipped_for_a_reason():
    commands = [c for document in DOCUMENTS for c in documented_commands(document)]
    assert len([c for c in commands if runs(c)]) >= 15
    for command in commands:
        assert command.startswith(("nncv ", "python ", "bash ", "ruff ", "dask ")), command


def _options(command: str) -> dict[str, str]:
    return dict(re.findall(r"(--[a-z-]+) ([^\s-][^\s]*)", command))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_documented_reports_and_workers_find_a_study_made_before(document):
    """A `report`/`worker` names the storage and study of an earlier `tune` in the same page."""
    made: set[tuple[str, str]] = set()
    for command in documented_commands(document):
        options = _options(command)
        if command.startswith("nncv tune") and "--storage" in options:
            data = command.split()[2]
            made.add((options["--storage"], options.get("--study-name", Path(data).stem)))
        elif command.startswith(("nncv report", "nncv worker")) and "--storage" in options:
            assert (options["--storage"], options.get("--study-name")) in made, command


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS)
def test_documented_commands_run_as_written_in_order(document, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["MPLBACKEND"] = "Agg"
    for command in documented_commands(document):
        if not runs(command):
            continue
        small = shrink(command)
        done = subprocess.run(
            ["bash", "-c", small],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{document}: {small}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, small
