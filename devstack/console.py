"""The developer console under ``/_dev/``.

What a developer needs while clicking through the product locally: the demo profiles and
their links, every email that was sent (rendered, as text and with all headers), the state
machine executions, and buttons for what would otherwise need AWS: run the periodic campaign
now, emit a shop purchase, fire a schedule. The same data is served as JSON for tests.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from devstack import outbox
from devstack.aws import AwsClients
from devstack.events import EventDelivery, scheduled_event
from devstack.lambdas import LambdaRuntime
from devstack.model import ScheduleSpec

LOG = logging.getLogger(__name__)

PREFIX = "/_dev/"
PERIODIC_MARKER = "Periodic"
PURCHASE_SOURCE = "shop"
PURCHASE_DETAIL_TYPE = "PurchaseCompleted"
MAX_EXECUTIONS = 50


class DevConsole:
    """Serves ``/_dev/`` (HTML) and ``/_dev/api/`` (JSON)."""

    def __init__(self, runtime: LambdaRuntime, clients: AwsClients, urls: dict[str, str]):
        self.runtime = runtime
        self.resources = runtime.resources
        self.clients = clients
        self.urls = urls
        self.demo_profiles: list[dict[str, Any]] = []
        self.jinja = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # ---------------------------------------------------------------- actions

    def periodic_state_machines(self) -> list[str]:
        """Logical ids of the template's state machines that run a periodic campaign."""
        return [lid for lid in self.resources.state_machines if PERIODIC_MARKER in lid]

    def run_periodic(self) -> list[str]:
        """Start every periodic state machine with ``{}``; returns the execution ARNs."""
        sfn = self.clients("stepfunctions")
        arns = []
        for logical_id in self.periodic_state_machines():
            machine = self.resources.state_machines[logical_id]
            arns.append(sfn.start_execution(stateMachineArn=machine.arn, input="{}")["executionArn"])
            LOG.info("console: started %s", logical_id)
        return arns

    def purchase_bus(self) -> str | None:
        """The template bus a shop purchase goes to, if a rule of the template listens for it."""
        from moto.events.models import EventPattern

        sample = {
            "version": "0",
            "id": "sample",
            "source": PURCHASE_SOURCE,
            "detail-type": PURCHASE_DETAIL_TYPE,
            "account": self.clients.account_id,
            "region": self.clients.region,
            "time": "2024-01-01T00:00:00Z",
            "resources": [],
            "detail": {
                "orderId": "sample",
                "email": "sample@example.com",
                "occurredAt": "2024-01-01T00:00:00Z",
            },
        }
        template_buses = set(self.resources.buses.values())
        for rule in self.resources.rules.values():
            if (
                rule.pattern
                and rule.bus_name in template_buses
                and EventPattern.load(json.dumps(rule.pattern)).matches_event(sample)  # type: ignore[arg-type]
            ):
                return rule.bus_name
        return None

    def emit_purchase(self, email: str, customer_id: str | None = None) -> dict[str, str]:
        """Put a shop ``PurchaseCompleted`` event on the template's bus."""
        bus = self.purchase_bus() or next(iter(self.resources.buses.values()), "default")
        order_id = f"local-{uuid.uuid4().hex[:12]}"
        detail: dict[str, str] = {
            "orderId": order_id,
            "email": email,
            "occurredAt": datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if customer_id:
            detail["customerId"] = customer_id
        response = self.clients("events").put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": PURCHASE_SOURCE,
                    "DetailType": PURCHASE_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        entry = response["Entries"][0]
        if "ErrorCode" in entry:
            raise RuntimeError(f"PutEvents rejected the event: {entry['ErrorCode']}")
        LOG.info("console: shop purchase emitted on bus %s", bus)
        return {"eventId": entry["EventId"], "orderId": order_id}

    def run_schedule(self, schedule: ScheduleSpec) -> str:
        """Do what the schedule would do when it fires."""
        if schedule.input is not None:
            payload = schedule.input
        else:
            rule_arn = self.resources.attributes.get(schedule.logical_id.split(".")[0], {}).get("Arn", "")
            payload = json.dumps(scheduled_event(str(rule_arn), self.clients.account_id, self.clients.region))
        service = schedule.target_arn.split(":")[2] if schedule.target_arn.count(":") >= 5 else ""
        if service == "states":
            EventDelivery.start_execution(schedule.target_arn, payload)
        elif service == "lambda":
            spec = self.resources.function_by_name(schedule.target_arn)
            if spec is None:
                raise LookupError("the schedule's function is not part of the template")
            self.runtime.invoke_async(spec, payload)
        else:
            raise LookupError(f"running a {service or 'unknown'} target is not supported locally")
        LOG.info("console: schedule %s run now", schedule.logical_id)
        return schedule.logical_id

    # ---------------------------------------------------------------- queries

    def executions(self) -> list[dict[str, Any]]:
        """Recent executions of the template's state machines, newest first."""
        sfn = self.clients("stepfunctions")
        items: list[dict[str, Any]] = []
        for logical_id, machine in self.resources.state_machines.items():
            listed = sfn.list_executions(stateMachineArn=machine.arn, maxResults=MAX_EXECUTIONS)
            for execution in listed.get("executions", []):
                item = {
                    "stateMachine": logical_id,
                    "name": execution["name"],
                    "executionArn": execution["executionArn"],
                    "status": execution["status"],
                    "startDate": _iso(execution.get("startDate")),
                    "stopDate": _iso(execution.get("stopDate")),
                }
                if execution["status"] != "RUNNING":
                    described = sfn.describe_execution(executionArn=execution["executionArn"])
                    item["error"] = described.get("error")
                    item["cause"] = described.get("cause")
                    item["outcome"] = outcome_of(described.get("output"))
                items.append(item)
        items.sort(key=lambda item: item["startDate"] or "", reverse=True)
        return items[:MAX_EXECUTIONS]

    # ---------------------------------------------------------------- routing

    def __call__(self, request: Request) -> Response:
        """Dispatch a request below ``/_dev/``."""
        if request.method in ("POST", "DELETE", "PUT") and not self._same_origin(request):
            return _json({"message": "cross-origin request refused"}, 403)
        path = request.path[len(PREFIX) - 1 :].rstrip("/") or "/"
        try:
            return self._route(request, path)
        except Exception as error:
            LOG.exception("console: %s %s failed", request.method, path)
            if path.startswith("/api/"):
                return _json({"message": f"{type(error).__name__}: {error}"}, 500)
            return self._redirect(error=f"{type(error).__name__}: {error}")

    def _route(self, request: Request, path: str) -> Response:  # noqa: PLR0911 - a routing table
        method = request.method
        if path == "/" and method in ("GET", "HEAD"):
            return self._page(request)
        if path.startswith("/outbox/") and method in ("GET", "HEAD"):
            return self._email_page(path.removeprefix("/outbox/"))
        if path == "/api/outbox" and method == "GET":
            return _json(outbox.list_outbox(self.clients.account_id, self.clients.region))
        if path in ("/api/outbox", "/api/outbox/clear") and method in ("DELETE", "POST"):
            return _json({"cleared": outbox.clear_outbox(self.clients.account_id, self.clients.region)})
        if path == "/api/executions" and method == "GET":
            return _json(self.executions())
        if path == "/api/resources" and method == "GET":
            return _json(self.resources.summary())
        if path == "/api/demo" and method == "GET":
            return _json(self.demo_profiles)
        if path == "/api/periodic" and method == "POST":
            return _json({"executionArns": self.run_periodic()})
        if path == "/api/purchase" and method == "POST":
            body = request.get_json(silent=True) or {}
            if not body.get("email"):
                return _json({"message": "email is required"}, 400)
            return _json(self.emit_purchase(str(body["email"]), body.get("customerId")))
        if path == "/actions/periodic" and method == "POST":
            started = self.run_periodic()
            return self._redirect(notice=f"Started {len(started)} periodic execution(s).")
        if path == "/actions/purchase" and method == "POST":
            email = request.form.get("email", "").strip()
            if not email:
                return self._redirect(error="An email address is required.")
            self.emit_purchase(email, request.form.get("customerId", "").strip() or None)
            return self._redirect(notice="Shop purchase emitted.")
        if path.startswith("/actions/schedule/") and method == "POST":
            schedule = self.resources.schedules.get(path.removeprefix("/actions/schedule/"))
            if schedule is None:
                return self._redirect(error="Unknown schedule.")
            self.run_schedule(schedule)
            return self._redirect(notice=f"Schedule {schedule.logical_id} run.")
        if path == "/actions/clear-outbox" and method == "POST":
            count = outbox.clear_outbox(self.clients.account_id, self.clients.region)
            return self._redirect(notice=f"Removed {count} email(s) from the outbox.")
        return _json({"message": "Not Found"}, 404)

    def _page(self, request: Request) -> Response:
        html = self.jinja.get_template("console.html.j2").render(
            urls=self.urls,
            notice=request.args.get("notice"),
            error=request.args.get("error"),
            demo_profiles=self.demo_profiles,
            emails=outbox.list_outbox(self.clients.account_id, self.clients.region),
            executions=self.executions(),
            periodic=self.periodic_state_machines(),
            purchase_bus=self.purchase_bus(),
            schedules=list(self.resources.schedules.values()),
            resources=self.resources.summary(),
            routes=self.resources.http_routes,
        )
        return Response(html, content_type="text/html; charset=utf-8")

    def _email_page(self, message_id: str) -> Response:
        item = outbox.get_email(message_id, self.clients.account_id, self.clients.region)
        if item is None:
            return Response("Email not found (the outbox may have been cleared).", status=404)
        html = self.jinja.get_template("email.html.j2").render(
            email=item, urls=self.urls, srcdoc=with_base_target(item["html"] or "")
        )
        return Response(html, content_type="text/html; charset=utf-8")

    @staticmethod
    def _redirect(**message: str) -> Response:
        return redirect(f"{PREFIX}?{urlencode(message)}", code=303)

    @staticmethod
    def _same_origin(request: Request) -> bool:
        origin = request.headers.get("Origin") or request.headers.get("Referer")
        if not origin or origin == "null":
            return origin is None
        return urlsplit(origin).netloc == request.host


_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def outcome_of(output: str | None) -> str:
    """One line on what an execution did, from its output (review run summary or event outcome)."""
    try:
        data = json.loads(output) if output else None
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    if data.get("status") == "skipped":
        return f"skipped: {data.get('error', '')}"
    if "sent" in data and "due" in data:
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted((data.get("skipped") or {}).items()))
        return f"due {data['due']}, sent {data['sent']}, failed {data.get('failed', 0)}" + (
            f"; skipped: {skipped}" if skipped else ""
        )
    if "outcome" in data:
        return str(data["outcome"]) + (f" ({data['reason']})" if data.get("reason") else "")
    return ""


def with_base_target(html: str) -> str:
    """Make the email's links open in a new tab (inside ``<head>``, so the doctype still counts)."""
    base = '<base target="_blank">'
    match = _HEAD.search(html)
    if match:
        return f"{html[: match.end()]}{base}{html[match.end() :]}"
    return f"{base}{html}"


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str), status=status, content_type="application/json")


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return None if value is None else str(value)
