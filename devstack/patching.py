"""One mechanism for the local stack's process-wide fixes to moto.

Each fix replaces one attribute of a moto module or class with something built from moto's own
attribute (so a wrapper can call it), and puts the original back when the stack stops.
Installing twice changes nothing. Every patch names the moto limitation it works around
(``works_around``); moto has no public hook for any of them (its public configuration covers
only what ``MOTO_CONFIG`` in ``devstack.app`` sets).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


class MotoPatch:
    def __init__(self, owner: str, attribute: str, replacement: Callable[[Any], Any], *, works_around: str) -> None:
        """``owner``: a module path, or a module path and a class (``moto.ses.models.SESBackend``);
        ``works_around``: the moto limitation the patch exists for, in one line (README lists them)."""
        if not works_around.strip():
            raise ValueError(f"{owner}.{attribute}: say which moto limitation the patch works around")
        self.works_around = works_around
        self._owner_path = owner
        self._attribute = attribute
        self._replacement = replacement
        self.original: Any = None

    def _owner(self) -> Any:
        try:
            return importlib.import_module(self._owner_path)
        except ModuleNotFoundError:
            module, _, name = self._owner_path.rpartition(".")
            return getattr(importlib.import_module(module), name)

    @property
    def installed(self) -> bool:
        return self.original is not None

    def install(self) -> None:
        if self.installed:
            return
        owner = self._owner()
        self.original = getattr(owner, self._attribute)
        setattr(owner, self._attribute, self._replacement(self.original))

    def uninstall(self) -> None:
        if self.installed:
            setattr(self._owner(), self._attribute, self.original)
        self.original = None


def install_all(patches: Iterable[MotoPatch]) -> None:
    for patch in patches:
        patch.install()


def uninstall_all(patches: Iterable[MotoPatch]) -> None:
    for patch in reversed(list(patches)):
        patch.uninstall()
