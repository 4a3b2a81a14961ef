"""Reading the SAM template and resolving CloudFormation intrinsic functions.

The local stack must be built from ``template.yaml`` itself so that the two cannot drift.
This module turns the YAML short-form tags (``!Ref``, ``!Sub`` ...) into the long form
(``{"Ref": ...}``, ``{"Fn::Sub": ...}``) and resolves intrinsics against parameters,
pseudo parameters and the physical ids of resources created locally.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from samtranslator.plugins.globals.globals import Globals
from samtranslator.yaml_helper import intrinsics_multi_constructor

ACCOUNT_ID = "123456789012"
REGION = "eu-central-1"


class TemplateError(Exception):
    """The template uses something the local stack cannot resolve."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader with CloudFormation short-form tags (``!Ref`` ...), read as SAM reads them: with
    samtranslator's own constructor (``!GetAtt A.B`` becomes ``{"Fn::GetAtt": ["A", "B"]}``)."""


_CfnLoader.add_multi_constructor("!", intrinsics_multi_constructor)


def load_yaml(text: str) -> Any:
    """Parse YAML that may contain CloudFormation short-form tags."""
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def load_template(path: Path) -> dict[str, Any]:
    """A SAM template (``template.yaml``, or the one ``sam build`` writes) as a mapping; the one
    reader of the template for the local stack and the tests."""
    document = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a YAML mapping")
    return document


@dataclass
class Template:
    """The parts of a SAM template the local stack needs."""

    path: Path
    parameters: dict[str, dict[str, Any]]
    conditions: dict[str, Any]
    mappings: dict[str, Any]
    globals: dict[str, Any]
    resources: dict[str, dict[str, Any]]

    @property
    def root(self) -> Path:
        """Directory that CodeUri/DefinitionUri paths are relative to."""
        return self.path.parent

    @classmethod
    def load(cls, path: Path) -> Template:
        """Read and parse ``path``."""
        document = load_template(path)
        return cls(
            path=path,
            parameters=dict(document.get("Parameters") or {}),
            conditions=dict(document.get("Conditions") or {}),
            mappings=dict(document.get("Mappings") or {}),
            globals=dict(document.get("Globals") or {}),
            resources=dict(document.get("Resources") or {}),
        )

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's Properties with the Globals applied as the SAM transform applies them
        (maps merge, lists add up, scalars and intrinsics override; ``IgnoreGlobals`` honoured)."""
        resource = self.resources[logical_id]
        own = dict(resource.get("Properties") or {})
        if not self.globals:
            return own
        merged = Globals({"Globals": copy.deepcopy(self.globals)}).merge(
            str(resource.get("Type")), own, logical_id, resource.get("IgnoreGlobals")
        )
        return dict(merged)

    def resources_of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        """Resources whose Type is one of ``types``, in template order."""
        return {lid: res for lid, res in self.resources.items() if res.get("Type") in types}


class _NoValue:
    """Marker for ``AWS::NoValue``: the surrounding key or list item disappears."""


NO_VALUE = _NoValue()
_SUB_PATTERN = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Resolver:
    """Resolves intrinsic functions.

    ``ref`` and ``get_att`` are called for references to resources; the provisioner
    creates the resource on first use, so dependency order follows from the references.
    """

    template: Template
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    ref: Callable[[str], Any] | None = None
    get_att: Callable[[str, str], Any] | None = None
    region: str = REGION
    account_id: str = ACCOUNT_ID
    stack_name: str = "selfservice-local"
    _condition_cache: dict[str, bool] = field(default_factory=dict)

    def pseudo_parameters(self) -> dict[str, Any]:
        """Values of the ``AWS::*`` pseudo parameters locally."""
        stack_id = f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local"
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": stack_id,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    def parameter(self, name: str) -> Any:
        """Value of template parameter ``name`` (override, else Default)."""
        spec = self.template.parameters[name]
        raw: Any = self.parameter_overrides.get(name, spec.get("Default"))
        if raw is None:
            raise TemplateError(f"parameter {name} has no Default and no local override")
        param_type = str(spec.get("Type", "String"))
        if param_type.startswith("List<") or param_type == "CommaDelimitedList":
            return raw if isinstance(raw, list) else [item.strip() for item in str(raw).split(",")]
        return str(raw)

    def resolve_ref(self, name: str) -> Any:
        """``{"Ref": name}``: pseudo parameter, parameter or resource."""
        pseudo = self.pseudo_parameters()
        if name in pseudo:
            return pseudo[name]
        if name in self.template.parameters:
            return self.parameter(name)
        if name in self.template.resources:
            if self.ref is None:
                raise TemplateError(f"cannot resolve Ref {name} without resources")
            return self.ref(name)
        raise TemplateError(f"unknown Ref target {name}")

    def condition(self, name: str) -> bool:
        """Evaluate a named condition of the Conditions section (memoised)."""
        if name not in self._condition_cache:
            if name not in self.template.conditions:
                raise TemplateError(f"unknown condition {name}")
            self._condition_cache[name] = bool(self.resolve(self.template.conditions[name]))
        return self._condition_cache[name]

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic inside ``value`` (recursively)."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.resolve_ref(str(self.resolve(argument)))
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key[4:], argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _function(self, name: str, argument: Any) -> Any:  # noqa: PLR0911 - a dispatch table
        if name == "Sub":
            return self._sub(argument)
        if name == "GetAtt":
            parts = argument if isinstance(argument, list) else str(argument).split(".", 1)
            logical_id, attribute = (str(self.resolve(part)) for part in parts)
            return self._get_att(logical_id, attribute)
        if name == "If":
            condition_name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition_name) else when_false)
        args = self.resolve(argument)
        if name == "Join":
            delimiter, items = args
            return str(delimiter).join(str(item) for item in items)
        if name == "Select":
            index, items = args
            return items[int(index)]
        if name == "Split":
            delimiter, text = args
            return str(text).split(str(delimiter))
        if name == "Equals":
            left, right = args
            return str(left) == str(right)
        if name == "And":
            return all(bool(item) for item in args)
        if name == "Or":
            return any(bool(item) for item in args)
        if name == "Not":
            return not bool(args[0])
        if name == "FindInMap":
            map_name, top_key, second_key = args
            return self.template.mappings[map_name][top_key][second_key]
        if name == "Base64":
            return base64.b64encode(str(args).encode()).decode()
        if name == "ToJsonString":
            return json.dumps(args, separators=(",", ":"))
        if name == "Length":
            return len(args)
        if name == "GetAZs":
            return [f"{self.region}{suffix}" for suffix in "abc"]
        raise TemplateError(f"Fn::{name} is not supported by the local stack")

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.template.resources or self.get_att is None:
            raise TemplateError(f"cannot resolve GetAtt {logical_id}.{attribute}")
        return self.get_att(logical_id, attribute)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1] if len(argument) > 1 else {})
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return str(self._get_att(logical_id, attribute))
            return str(self.resolve_ref(expression))

        return _SUB_PATTERN.sub(replace, str(text))
