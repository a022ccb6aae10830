"""Every command the README's Operate section shows, run as written against the lab's
stacks (issue 22: "the README's Operate section can be tried in the lab").

The commands are read from README.md, so the test follows the docs: a command added there
runs here. Each runs in a process of its own under exactly the variables ``edgefill lab
up`` prints (``edgefill.commands.lab.operator_env``), in a directory holding the paths
files the README names, after the paths it names were copied into the bucket (a deployed
system that has served them). Each exits 0, except where docs/LAB.md documents the lab's
own answer ("The README against the lab")."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from edgefill.commands.lab import operator_env
from edgefill.lab.lab import Lab
from shared.messages import BackfillMessage, format_time, to_json

ROOT: Final = Path(__file__).resolve().parents[2]
# docs/LAB.md, "The README against the lab": moto has no origin groups, OAC, bucket
# policies or Lambda event source mappings, so the doctor's wiring checks fail (exit 1);
# its canary cannot reach the viewer host, which only the lab's DNS knows.
DOCUMENTED: Final = {"doctor": 1}
DOCTOR_PASSES: Final = {"stack", "edge-logs", "routes", "queues"}  # in the lab (LAB.md)
CANARY: Final = "/launch/new.jpg"  # at the full origin, not in the bucket (README)
PATHS_FILES: Final = {
    "launch-paths.txt": ("/launch/index.html", "/launch/hero.jpg"),
    "pages.txt": ("/index.html", "/news/today.html"),
}


def operate_commands(readme: str) -> list[list[str]]:
    """The ``edgefill`` commands of the Operate section's shell blocks, as argv lists
    (continuation lines joined, comments dropped)."""
    section = readme.split("\n## Operate\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "edgefill":
                commands.append(words)
    return commands


def test_the_operate_section_is_read_from_the_readme() -> None:
    commands = operate_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    named = {argv[1] for argv in commands}
    assert {"prewarm", "backfill", "status", "redrive", "warm", "doctor", "estimate"} <= named
    assert {"refresh", "invalidate", "check"} <= named
    assert all("--stack" in argv for argv in commands), "every example runs on the stack"


def test_every_operate_command_of_the_readme_runs_against_the_lab(lab: Lab, tmp_path: Path) -> None:
    assert lab.aws is not None and lab.stacks is not None
    commands = operate_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    # Given the paths the README names at the full origin, and in the bucket
    for name, paths in PATHS_FILES.items():
        (tmp_path / name).write_text("\n".join(paths) + "\n", encoding="utf-8")
    named = {word for argv in commands for word in argv if word.startswith("/")}
    named |= {path for paths in PATHS_FILES.values() for path in paths}
    paths = sorted(p for p in named if not p.endswith("*"))
    for path in paths:
        body = "#EXTM3U\n#EXT-X-ENDLIST\n" if path.endswith(".m3u8") else f"README {path}\n"
        lab.origin.put(path, body.encode())
    sqs = lab.aws.client("sqs")
    now = format_time(datetime.now(UTC))
    for path in paths:
        if path != CANARY:
            message = to_json(BackfillMessage(uri=path, at=now))
            sqs.send_message(QueueUrl=lab.aws.queue("BackfillQueue").url, MessageBody=message)
    lab.wait_idle(timeout=120)
    # The variables lab up prints, and nothing else of AWS's or edgefill's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EDGEFILL_"))}
    env |= operator_env(lab) | {"PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    env |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def paste(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edgefill.cli", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    # When the operator pastes each command (several terminals at once: each stands on its
    # own, as the README shows them, and the lab serves them as AWS would)
    with ThreadPoolExecutor(max_workers=4) as terminals:
        runs = list(terminals.map(paste, commands))
    failures = []
    for argv, done in zip(commands, runs, strict=True):
        # Then each exits as documented
        expected = DOCUMENTED.get(argv[1], 0)
        if done.returncode != expected:
            failures.append(
                f"{shlex.join(argv)}: exit {done.returncode}, expected {expected}\n"
                f"{done.stderr[-1500:]}{done.stdout[-1500:]}"
            )
        if "--json" in argv and done.returncode in (0, 1):
            document = json.loads(done.stdout)  # the machine form parses
            if argv[1] == "doctor":  # and fails exactly the checks LAB.md says it does
                assert {r["check"] for r in document if r["ok"]} == DOCTOR_PASSES, document
    assert not failures, "\n\n".join(failures)
