"""What the local stack knows about the resources it created from the template.

The provisioner fills a :class:`StackResources`; the Lambda runtime, the event delivery,
the HTTP gateway and the console read it. Keeping it as plain data keeps those parts
independent of how the template was parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class HttpRoute:
    """One ``HttpApi`` event of a function: ``Method Path`` or ``$default``."""

    function: str
    """Logical id of the function that serves the route."""
    method: str
    """Upper-case verb or ``ANY``."""
    path: str
    """Route path such as ``/api/{proxy+}``, or ``$default``."""
    iam_auth: bool = False

    @property
    def route_key(self) -> str:
        """API Gateway route key, e.g. ``ANY /api/{proxy+}``."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass
class FunctionSpec:
    """A function of the template and where its real handler lives."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    memory_mb: int = 128
    timeout_s: int = 3
    dead_letter_arn: str | None = None
    """SQS queue that receives failed asynchronous invocations (DLQ or OnFailure)."""
    max_async_retries: int = 2
    http_routes: list[HttpRoute] = field(default_factory=list)

    @property
    def handler_file(self) -> Path:
        """``app.handler`` -> ``<code_dir>/app.py``."""
        module_path = self.handler.rsplit(".", 1)[0]
        return self.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")

    @property
    def handler_attribute(self) -> str:
        """``app.handler`` -> ``handler``."""
        return self.handler.rsplit(".", 1)[-1]


@dataclass
class StateMachineSpec:
    """A state machine of the template, created in moto's Step Functions."""

    logical_id: str
    name: str
    arn: str
    definition_file: Path | None


@dataclass
class RuleSpec:
    """An EventBridge rule (explicit or from a SAM ``EventBridgeRule`` event)."""

    logical_id: str
    name: str
    bus_name: str
    pattern: dict[str, Any] | None
    targets: list[dict[str, Any]]


@dataclass
class ScheduleSpec:
    """A schedule moto will never fire; the console can run its target now."""

    logical_id: str
    name: str
    expression: str
    target_arn: str
    input: str | None
    """Constant input; ``None`` means the EventBridge "Scheduled Event" envelope."""
    kind: str
    """``events-rule`` or ``scheduler``."""


@dataclass
class StackResources:
    """Everything created from the template, by logical id and by physical name."""

    refs: dict[str, Any] = field(default_factory=dict)
    """Logical id -> value of ``Ref``."""
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Logical id -> ``GetAtt`` attributes."""
    types: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    rules: dict[str, RuleSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    buses: dict[str, str] = field(default_factory=dict)
    """Logical id -> bus name."""
    common_environment: dict[str, str] = field(default_factory=dict)
    """Resolved ``Globals.Function.Environment`` plus local overrides."""

    def function_by_name(self, name_or_arn: str) -> FunctionSpec | None:
        """Find a function by name, ARN or ARN with qualifier."""
        name = function_name_from_arn(name_or_arn)
        for spec in self.functions.values():
            if spec.name == name:
                return spec
        return None

    @property
    def http_routes(self) -> list[HttpRoute]:
        """Every ``HttpApi`` route of every function."""
        return [route for spec in self.functions.values() for route in spec.http_routes]

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view for the console and for tests."""
        return {
            "refs": {key: value for key, value in self.refs.items() if isinstance(value, str)},
            "functions": {lid: {"name": f.name, "arn": f.arn} for lid, f in self.functions.items()},
            "stateMachines": {lid: {"name": s.name, "arn": s.arn} for lid, s in self.state_machines.items()},
            "rules": {lid: {"name": r.name, "bus": r.bus_name} for lid, r in self.rules.items()},
            "schedules": {
                lid: {"name": s.name, "expression": s.expression, "target": s.target_arn}
                for lid, s in self.schedules.items()
            },
            "buses": dict(self.buses),
        }


def function_name_from_arn(name_or_arn: str) -> str:
    """``arn:aws:lambda:r:a:function:name[:qualifier]`` -> ``name``; a plain name stays."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        if len(parts) >= 7:
            return parts[6]
    return name_or_arn.split(":", 1)[0]
