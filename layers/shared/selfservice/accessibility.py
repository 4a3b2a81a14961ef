"""What the accessibility statement says was tested: the results file the test suite writes.

The browser tests (``tests/e2e``) run axe-core on the pages and check them with the keyboard; each
check is recorded in ``accessibility-results.json`` next to the catalog (the content layer, so a
build packages the results of the last test run). The statement (``/accessibility``) reads it and
says only what it holds: without the file, the pages are "not tested yet".
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RESULTS_FILE = "accessibility-results.json"
WCAG_TAGS = frozenset({"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"})
"""axe-core's tags of the WCAG 2.0, 2.1 and 2.2 level A and AA rules (others are best practice)."""


class Violation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    rule: str
    impact: str | None = None
    help: str
    tags: tuple[str, ...] = ()
    nodes: int = 0

    @property
    def wcag(self) -> bool:
        """A violation of a WCAG A/AA rule (not only a best practice)."""
        return bool(WCAG_TAGS.intersection(self.tags))


class Check(BaseModel):
    """One check of one page: ``axe`` (axe-core's rules) or ``keyboard`` (a keyboard-only task)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str = Field(pattern=r"^(axe|keyboard)$")
    name: str
    page: str
    language: str
    viewport: str = ""
    passed: bool
    violations: tuple[Violation, ...] = ()


class Results(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tested_at: dt.datetime
    commit: str = ""
    axe_version: str = ""
    checks: tuple[Check, ...] = ()

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


class Conformance(StrEnum):
    """The statement's status (the EU model statement's three, and "not tested yet")."""

    FULL = "full"
    PARTIAL = "partial"
    UNTESTED = "untested"


def conformance(results: Results | None, known_limitations: int) -> Conformance:
    """Fully conformant only when checks ran, every one passed and no barrier is known; partially
    when checks ran but one failed or a barrier is known; untested without results."""
    if results is None or not results.checks:
        return Conformance.UNTESTED
    if results.passed and known_limitations == 0:
        return Conformance.FULL
    return Conformance.PARTIAL


def load_results(content_dir: Path) -> Results | None:
    """The results next to the catalog, or None when there are none (or they cannot be read)."""
    path = content_dir / RESULTS_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read(path, stamp)


@lru_cache(maxsize=2)
def _read(path: Path, _stamp: int) -> Results | None:
    """Read once per version of the file (the tests rewrite it while the local stack runs)."""
    try:
        return Results.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None
