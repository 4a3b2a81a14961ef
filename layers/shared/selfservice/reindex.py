"""Every stored profile written again with this release's index keys: run once after a deploy that
added a sparse index (``Audience``, ``PauseEnding``, ``ReviewDue``), so that profiles stored before it
enter it now rather than at their next change. Safe to run at any time and again: a profile is
written as it is, only over the version read (one changed meanwhile was indexed by that change).

As an operator, with the stack's table and catalog::

    TABLE_NAME=selfservice-prod-ProfileTable CONTENT_DIR=templates PYTHONPATH=layers/shared \\
        python -m selfservice.reindex --segments 8
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from selfservice.storage import ProfileRepository


@dataclass
class Reindexed:
    written: int = 0
    changed_meanwhile: int = 0


def reindex_all(repository: ProfileRepository, segments: int = 4) -> Reindexed:
    """Scan the profiles in ``segments`` parallel parts and write each again."""

    def segment(number: int) -> Reindexed:
        counts = Reindexed()
        for profile in repository.stored_profiles(number, segments):
            if repository.rewrite_with_index_keys(profile):
                counts.written += 1
            else:
                counts.changed_meanwhile += 1
        return counts

    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(pool.map(segment, range(segments)))
    return Reindexed(sum(p.written for p in parts), sum(p.changed_meanwhile for p in parts))


def main(argv: list[str] | None = None) -> None:
    from selfservice import bootstrap

    parser = argparse.ArgumentParser(description="Write every profile again with this release's index keys.")
    parser.add_argument("--segments", type=int, default=4, help="parallel scan segments (1 to 64)")
    args = parser.parse_args(argv)
    result = reindex_all(bootstrap.wiring().repository, max(1, min(64, args.segments)))
    print(f"{result.written} profiles written, {result.changed_meanwhile} changed meanwhile (indexed by that change)")


if __name__ == "__main__":
    main()
