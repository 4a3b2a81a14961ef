"""Reading the SAM template: the one loader for the local stack and the tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from samtranslator.plugins.globals.globals import Globals
from samtranslator.yaml_helper import intrinsics_multi_constructor

ACCOUNT_ID = "123456789012"
REGION = "eu-central-1"


class TemplateError(Exception):
    """The template cannot be read or provisioned locally."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader with CloudFormation's short-form tags (``!Ref`` ...), read by samtranslator's own constructor."""


_CfnLoader.add_multi_constructor("!", intrinsics_multi_constructor)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def load_template(path: Path) -> dict[str, Any]:
    """A SAM template (``template.yaml``, or the one ``sam build`` writes) as a mapping."""
    document = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a YAML mapping")
    return document


@dataclass
class Template:
    """A SAM template and where it lies (CodeUri and DefinitionUri are relative to it)."""

    path: Path
    document: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(path, load_template(path))

    @property
    def globals(self) -> dict[str, Any]:
        return dict(self.document.get("Globals") or {})

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.document.get("Resources") or {})

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's Properties with the Globals applied as the SAM transform applies them
        (maps merge, lists add up, scalars and intrinsics override; ``IgnoreGlobals`` honoured)."""
        resource = self.resources[logical_id]
        own, ignored = dict(resource.get("Properties") or {}), resource.get("IgnoreGlobals")
        if not self.globals:
            return own
        return dict(Globals({"Globals": copy.deepcopy(self.globals)}).merge(resource["Type"], own, logical_id, ignored))
