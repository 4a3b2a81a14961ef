"""The accessibility statement's test results: every axe-core run and keyboard check of the browser
tests, written to ``templates/accessibility-results.json`` (the content layer, read by ``/accessibility``).

The file holds the checks of the latest test session that ran any, each as it came out (passed or
failed), with the time, the commit tested and axe-core's version; it is rewritten after every check,
so the statement a running local stack shows lists what has run so far. ``make build`` packages the
file as it is, so the statement of a deployed version names the test run before its build.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selfservice.accessibility import RESULTS_FILE, WCAG_TAGS, Check, Results, Violation

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "templates" / RESULTS_FILE


def _commit() -> str:
    """The commit tested, with ``+changes`` when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f"{head}+changes" if dirty else head


class Recorder:
    def __init__(self, path: Path = RESULTS) -> None:
        self.path = path
        self.checks: list[Check] = []
        self.axe_version = ""
        self.commit = _commit()

    def axe(self, axe: Any, page: Any, path: str, language: str, viewport: str = "360 px") -> dict[str, Any]:
        """Run axe-core on ``page`` and record it; a violation of a WCAG A/AA rule fails the check.
        Returns axe's response (the caller asserts what its test requires)."""
        response: dict[str, Any] = axe.run(page).response
        self.axe_version = str(response.get("testEngine", {}).get("version", self.axe_version))
        violations = tuple(
            Violation(
                rule=v["id"],
                impact=v.get("impact"),
                help=v.get("help", ""),
                tags=tuple(v.get("tags", ())),
                nodes=len(v.get("nodes", ())),
            )
            for v in response.get("violations", [])
        )
        passed = not any(WCAG_TAGS.intersection(v.tags) for v in violations)
        self.add(
            Check(
                kind="axe",
                name="axe",
                page=path,
                language=language,
                viewport=viewport,
                passed=passed,
                violations=violations,
            )
        )
        return response

    @contextmanager
    def keyboard(self, name: str, path: str, language: str, viewport: str = "360 px") -> Iterator[None]:
        """A task done with the keyboard alone: passed when the block's assertions hold."""
        try:
            yield
        except BaseException:
            self.add(Check(kind="keyboard", name=name, page=path, language=language, viewport=viewport, passed=False))
            raise
        self.add(Check(kind="keyboard", name=name, page=path, language=language, viewport=viewport, passed=True))

    def add(self, check: Check) -> None:
        self.checks.append(check)
        results = Results(
            tested_at=dt.datetime.now(dt.UTC),
            commit=self.commit,
            axe_version=self.axe_version,
            checks=tuple(self.checks),
        )
        written = self.path.with_suffix(".tmp")
        written.write_text(json.dumps(results.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8")
        written.replace(self.path)  # the running stack never reads half a file
