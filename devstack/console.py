"""The developer console under ``/_dev/`` (as JSON under ``/_dev/api/``): the demo profiles and their links,
the outbox (every email moto's SES accepted, rendered, as text, with all headers), the webhook's deliveries,
the state machine executions, buttons for what would need AWS: run the periodic campaign, emit a purchase,
fire a schedule."""

import email
import email.policy
import html
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from devstack.config import AwsClients
from devstack.patches import SENT_AT, SMS_SENT_AT
from devstack.provision import ScheduleSpec
from devstack.runtime import LambdaRuntime, start_execution

LOG = logging.getLogger(__name__)
PREFIX = "/_dev/"
PURCHASE = {"source": "shop", "detail-type": "PurchaseCompleted"}
MAX_EXECUTIONS = 50


class DevConsole:
    """Serves ``/_dev/`` (HTML) and ``/_dev/api/`` (JSON)."""

    def __init__(self, runtime: LambdaRuntime, clients: AwsClients, urls: dict[str, str]):
        self.runtime, self.resources, self.clients, self.urls = runtime, runtime.resources, clients, urls
        self.demo_profiles: list[dict[str, Any]] = []
        templates = FileSystemLoader(Path(__file__).parent / "templates")
        autoescape = select_autoescape(default=True, default_for_string=True)
        self.jinja = Environment(loader=templates, autoescape=autoescape, trim_blocks=True, lstrip_blocks=True)  # noqa: S701

    def outbox(self) -> list[dict[str, Any]]:
        """Every email sent, newest first."""
        return [_describe(message) for message in reversed(list(self._sent()))]

    def _sent(self) -> list[Any]:
        from moto.ses.models import ses_backends  # (SES v1 and v2 share its sent_messages)

        return ses_backends[self.clients.account_id][self.clients.region].sent_messages

    def clear_outbox(self) -> int:
        count = len(sent := self._sent())
        sent.clear()
        return count

    def sms_outbox(self) -> list[dict[str, Any]]:
        """Every SMS moto's SNS accepted, newest first: ``{"to", "text", "sentAt"}``."""
        return [{"to": to, "text": text, "sentAt": _iso(SMS_SENT_AT.get(message_id))}
                for message_id, (to, text) in reversed(list(self._sms().items()))]  # fmt: skip

    def _sms(self) -> dict[str, tuple[str, str]]:
        from moto.sns.models import sns_backends

        return sns_backends[self.clients.account_id][self.clients.region].sms_messages

    def clear_sms(self) -> int:
        count = len(sent := self._sms())
        sent.clear()
        return count

    def periodic_state_machines(self) -> list[str]:
        return [logical_id for logical_id in self.resources.state_machines if "Periodic" in logical_id]

    def run_periodic(self) -> list[str]:
        """Start every periodic state machine with ``{}``; returns the execution ARNs."""
        sfn, machines = self.clients("stepfunctions"), self.resources.state_machines
        return [sfn.start_execution(stateMachineArn=machines[lid].arn, input="{}")["executionArn"]
                for lid in self.periodic_state_machines()]  # fmt: skip

    def purchase_bus(self) -> str | None:
        """The template's bus with a rule for shop purchases."""
        for bus in self.resources.of_type("AWS::Events::EventBus").values():
            for rule in self.clients("events").list_rules(EventBusName=bus)["Rules"]:
                pattern = json.loads(rule.get("EventPattern") or "{}")
                if pattern and all(value in pattern.get(key, [value]) for key, value in PURCHASE.items()):
                    return str(bus)
        return None

    def emit_purchase(self, email: str, customer_id: str | None = None) -> dict[str, str]:
        """Put a shop ``PurchaseCompleted`` event on the template's bus."""
        order_id, occurred = f"local-{uuid.uuid4().hex[:12]}", datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = {"orderId": order_id, "email": email, "occurredAt": occurred}
        detail |= {"customerId": customer_id} if customer_id else {}
        entry = {"EventBusName": self.purchase_bus() or "default", "Source": PURCHASE["source"],
                 "DetailType": PURCHASE["detail-type"], "Detail": json.dumps(detail)}  # fmt: skip
        result = self.clients("events").put_events(Entries=[entry])["Entries"][0]
        if "ErrorCode" in result:
            raise RuntimeError(f"PutEvents rejected the event: {result['ErrorCode']}")
        return {"eventId": result["EventId"], "orderId": order_id}

    def run_schedule(self, schedule: ScheduleSpec) -> None:
        """Do what the schedule would do when it fires."""
        if schedule.target_arn.split(":")[2:3] == ["states"]:
            start_execution(schedule.target_arn, schedule.input)
        elif spec := self.resources.function_by_name(schedule.target_arn):
            self.runtime.invoke_async(spec, schedule.input)
        else:
            raise LookupError(f"running {schedule.target_arn} is not supported locally")

    def executions(self) -> list[dict[str, Any]]:
        """Recent executions of the template's state machines, newest first."""
        sfn, items = self.clients("stepfunctions"), []
        for logical_id, machine in self.resources.state_machines.items():
            for run in sfn.list_executions(stateMachineArn=machine.arn, maxResults=MAX_EXECUTIONS)["executions"]:
                item = {"stateMachine": logical_id, "name": run["name"], "executionArn": run["executionArn"],
                        "status": run["status"], "startDate": _iso(run.get("startDate")),
                        "stopDate": _iso(run.get("stopDate"))}  # fmt: skip
                if run["status"] != "RUNNING":
                    described = sfn.describe_execution(executionArn=run["executionArn"])
                    item |= {"error": described.get("error"), "cause": described.get("cause"),
                             "outcome": outcome_of(described.get("output"))}  # fmt: skip
                items.append(item)
        return sorted(items, key=lambda item: item["startDate"] or "", reverse=True)[:MAX_EXECUTIONS]

    def __call__(self, request: Request) -> Response:
        if request.method in ("POST", "DELETE", "PUT") and not _same_origin(request):
            return _json({"message": "cross-origin request refused"}, 403)
        path = request.path[len(PREFIX) - 1 :].rstrip("/") or "/"
        try:
            return self._route(request, request.method, path)
        except Exception as error:
            LOG.exception("console: %s %s failed", request.method, path)
            message = f"{type(error).__name__}: {error}"
            return _json({"message": message}, 500) if path.startswith("/api/") else _back(error=message)

    def _route(self, request: Request, method: str, path: str) -> Response:  # noqa: PLR0911 - a routing table
        if method in ("GET", "HEAD") and path == "/":
            schedules, routes = list(self.resources.schedules.values()), self.resources.http_routes
            return self._page("console.html.j2", notice=request.args.get("notice"), error=request.args.get("error"),
                              demo_profiles=self.demo_profiles, emails=self.outbox(), sms=self.sms_outbox(),
                              executions=self.executions(), webhooks=list(self.runtime.webhooks.deliveries),
                              periodic=self.periodic_state_machines(), purchase_bus=self.purchase_bus(),
                              routes=routes, schedules=schedules)  # fmt: skip
        if method in ("GET", "HEAD") and path.startswith("/outbox/"):
            found = [item for item in self.outbox() if item["message_id"] == path.removeprefix("/outbox/")]
            if not found:
                return Response("Email not found (the outbox may have been cleared).", status=404)
            return self._page("email.html.j2", email=found[0], srcdoc=with_base_target(found[0]["html"] or ""))
        if method in ("DELETE", "POST") and path in ("/api/outbox", "/api/outbox/clear"):
            return _json({"cleared": self.clear_outbox()})
        if method in ("DELETE", "POST") and path in ("/api/sms", "/api/sms/clear"):
            return _json({"cleared": self.clear_sms()})
        api = {
            ("GET", "/api/outbox"): self.outbox,
            ("GET", "/api/sms"): self.sms_outbox,
            ("GET", "/api/executions"): self.executions,
            ("GET", "/api/webhooks"): lambda: list(self.runtime.webhooks.deliveries),
            ("GET", "/api/resources"): lambda: {"resources": self.resources.refs, "types": self.resources.types,
                                                "routes": [route.route_key for route in self.resources.http_routes]},
            ("GET", "/api/demo"): lambda: self.demo_profiles,
            ("POST", "/api/periodic"): lambda: {"executionArns": self.run_periodic()},
        }  # fmt: skip
        if (method, path) in api:
            return _json(api[(method, path)]())
        if (method, path) == ("POST", "/api/purchase"):
            if not (body := request.get_json(silent=True) or {}).get("email"):
                return _json({"message": "email is required"}, 400)
            return _json(self.emit_purchase(str(body["email"]), body.get("customerId")))
        if method != "POST" or not path.startswith("/actions/"):
            return _json({"message": "Not Found"}, 404)
        if path == "/actions/periodic":
            return _back(notice=f"Started {len(self.run_periodic())} periodic execution(s).")
        if path == "/actions/clear-outbox":
            return _back(notice=f"Removed {self.clear_outbox()} email(s) from the outbox.")
        if path == "/actions/clear-sms":
            return _back(notice=f"Removed {self.clear_sms()} SMS from the SMS outbox.")
        if path == "/actions/purchase":
            if not (address := request.form.get("email", "").strip()):
                return _back(error="An email address is required.")
            self.emit_purchase(address, request.form.get("customerId", "").strip() or None)
            return _back(notice="Shop purchase emitted.")
        if (schedule := self.resources.schedules.get(path.removeprefix("/actions/schedule/"))) is None:
            return _back(error="Unknown schedule.")
        self.run_schedule(schedule)
        return _back(notice=f"Schedule {schedule.logical_id} run.")

    def _page(self, template: str, **context: Any) -> Response:
        page = self.jinja.get_template(template).render(urls=self.urls, **context)
        return Response(page, content_type="text/html; charset=utf-8")


def _describe(message: Any) -> dict[str, Any]:
    """An email of the outbox: a raw (MIME) one, as the product sends them, parsed with its headers."""
    sent_at = SENT_AT.get(message.id)
    item = {"message_id": message.id, "sent_at": sent_at.isoformat() if sent_at else None, "headers": {}}
    if raw := getattr(message, "raw_data", None):
        parsed: Any = email.message_from_string(raw, policy=email.policy.default)
        html_part, text_part = parsed.get_body(preferencelist=("html",)), parsed.get_body(preferencelist=("plain",))
        for name, value in parsed.items():
            item["headers"][name] = f"{item['headers'][name]}, {value}" if name in item["headers"] else str(value)
        to = [address for _, address in getaddresses([str(v) for v in parsed.get_all("To", [])]) if address]
        item |= {"to": to or list(dict.fromkeys(message.destinations)), "from": str(parsed.get("From", "")),
                 "subject": str(parsed.get("Subject", "")), "html": html_part and html_part.get_content(),
                 "text": text_part and text_part.get_content()}  # fmt: skip
    else:  # a simple or templated message
        body = str(getattr(message, "body", getattr(message, "template_data", "")))
        is_html = hasattr(message, "body") and "<" in body and ">" in body
        item |= {"to": list((message.destinations or {}).get("ToAddresses", [])), "from": str(message.source),
                 "subject": str(getattr(message, "subject", f"(template {getattr(message, 'template', '')})")),
                 "html": body if is_html else None, "text": None if is_html else body}  # fmt: skip
    links = [html.unescape(href) for href in re.findall(r"<a\s[^>]*?href=\"([^\"]+)\"", item["html"] or "")]
    item["links"] = list(dict.fromkeys(links or re.findall(r"https?://[^\s<>\"')\]]+", item["text"] or "")))
    return item


def outcome_of(output: str | None) -> str:
    """One line on what an execution did, from its output (review run summary or event outcome)."""
    try:
        data = json.loads(output) if output else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ""
    if data.get("status") == "skipped":
        return f"skipped: {data.get('error', '')}"
    if "sent" in data and "due" in data:
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted((data.get("skipped") or {}).items()))
        summary = f"due {data['due']}, sent {data['sent']}, failed {data.get('failed', 0)}"
        return summary + (f"; skipped: {skipped}" if skipped else "")
    if "outcome" in data:
        return str(data["outcome"]) + (f" ({data['reason']})" if data.get("reason") else "")
    return ""


def with_base_target(page: str) -> str:
    """Make the email's links open in a new tab (inside ``<head>``, so the doctype still counts)."""
    at = head.end() if (head := re.search(r"<head(\s[^>]*)?>", page, re.IGNORECASE)) else 0
    return f'{page[:at]}<base target="_blank">{page[at:]}'


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    return origin is None if not origin or origin == "null" else urlsplit(origin).netloc == request.host


def _back(**message: str) -> Response:
    return redirect(f"{PREFIX}?{urlencode(message)}", code=303)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str), status=status, content_type="application/json")


def _iso(value: Any) -> str | None:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else None if value is None else str(value)
