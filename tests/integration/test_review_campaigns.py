"""Profile review campaigns: both state machines of template.yaml executing on moto with the real
handlers (Lambda tasks routed in-process, EventBridge delivering to the event review).

What a customer or operator notices: who gets a review email and who does not (and why), that a
second run or a duplicate event sends nothing, and that SES throttling loses nobody.
"""

from __future__ import annotations

import datetime as dt
import email
import importlib.util
import json
import math
import os
import re
import time
from collections import Counter
from email.policy import default as default_policy
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.endpoint
import pytest
from cfnlint.api import lint
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.ses.models import SESBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from devstack.cfn import Template, load_template
from devstack.config import REPO_ROOT
from selfservice.campaigns import RUN_TIMEOUT
from selfservice.domain.models import (
    FieldValue,
    LedgerKind,
    Preferences,
    Profile,
    SubscriptionStatus,
    address_hash,
)
from selfservice.domain.review import next_review_at, review_shard
from selfservice.settings import MAX_REVIEW_BATCH_SIZE, get_settings
from selfservice.storage import CampaignRunRepository, ProfileRepository
from tests.integration.conftest import StateMachineStack

PERIODIC = "PeriodicReviewStateMachine"
EVENT = "EventReviewStateMachine"
NOW = dt.datetime.now(dt.UTC)


# --- profiles, written directly (not through HTTP) ---------------------------------------------


def make_profile(number: int, *, due: bool, locale: str = "de", **changes: Any) -> Profile:
    """A confirmed subscriber of the news topic (email). ``due``: reviewed 200 days ago."""
    confirmed = NOW - dt.timedelta(days=20)
    profile = Profile(
        id=f"{number:032x}",
        email=f"customer{number}@example.com",
        locale=locale,
        status=SubscriptionStatus.SUBSCRIBED,
        consent_version="2026-01",
        fields={
            "first_name": FieldValue(value=f"Kunde {number}", confirmed_at=confirmed),
            "last_name": FieldValue(value="Muster", confirmed_at=confirmed),
            "city": FieldValue(value="Berlin", confirmed_at=confirmed),
        },
        preferences=Preferences(topics={"news": True}, frequency="weekly"),
        created_at=NOW - dt.timedelta(days=400),
        updated_at=confirmed,
        last_reviewed_at=NOW - dt.timedelta(days=200 if due else 30),
    )
    return profile.model_copy(update=changes)


def write_profiles(table: str, client: Any, profiles: list[Profile], *, stale_index: bool = False) -> None:
    """BatchWriteItem with the repository's item layout.

    ``stale_index``: the ReviewDue entry says "due since yesterday" although the profile no
    longer is -- an index entry that lags behind its profile (GSI replication, or profiles
    written before the review rules changed). The campaign must re-check every profile it reads.
    """
    catalog = get_settings().catalog

    def schedule(profile: Profile) -> dt.datetime | None:
        return NOW - dt.timedelta(days=1) if stale_index else next_review_at(profile, catalog)

    repository = ProfileRepository(table, client, schedule, get_settings().review_shard_count)
    items = [repository._profile_item(profile) for profile in profiles]
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def repository(machines: StateMachineStack) -> ProfileRepository:
    settings = get_settings()
    return ProfileRepository(
        machines.stack.table,
        machines.stack.aws("dynamodb"),
        lambda profile: next_review_at(profile, settings.catalog),
        settings.review_shard_count,
    )


def sent_to(machines: StateMachineStack) -> list[str]:
    """The recipient of every email sent, one entry per email."""
    return [str(parsed(message)["To"]) for message in machines.stack.sent_emails()]


def parsed(message: Any) -> email.message.EmailMessage:
    result = email.message_from_string(message.raw_data, policy=default_policy)
    assert isinstance(result, email.message.EmailMessage)
    return result


def campaign_runs_by_status(machines: StateMachineStack) -> dict[str, int]:
    return dict(Counter(item["status"]["S"] for item in campaign_runs(machines)))


def campaign_runs(machines: StateMachineStack) -> list[dict[str, Any]]:
    items = machines.stack.aws("dynamodb").query(
        TableName=machines.stack.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={":pk": {"S": "CAMPAIGN#periodic"}, ":run": {"S": "RUN#"}},
    )["Items"]
    return items


@pytest.fixture
def sdk_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The AWS SDK's pauses between retries of a throttled call, recorded instead of slept: every
    retry still happens, the test just does not wait for it."""
    pauses: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=pauses.append))
    return pauses


# --- the definitions ----------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", [PERIODIC, EVENT])
def test_the_definitions_are_valid_states_language_with_every_placeholder_substituted(logical_id: str) -> None:
    """What Step Functions would reject at deploy time: an unknown field, a state name it forbids,
    or a ``${placeholder}`` the template does not substitute."""
    template = Template.load(REPO_ROOT / "template.yaml")
    properties = template.resources[logical_id]["Properties"]
    text = (REPO_ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")
    substitutions = {name: f"arn:aws:lambda:eu-central-1:123456789012:function:{name}" for name in
                     properties["DefinitionSubstitutions"]}  # fmt: skip
    missing = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)) - set(substitutions)
    assert not missing, f"{logical_id}: no DefinitionSubstitutions for {sorted(missing)}"
    definition = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda match: substitutions[match.group(1)], text)
    document = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/r", "Definition": json.loads(definition)},
            }
        },
    }
    problems = [f"{m.rule.id}: {m.message}" for m in lint(json.dumps(document), regions=["eu-central-1"])]
    assert not problems, f"{logical_id}: {problems}"


# --- periodic -----------------------------------------------------------------------------------


@pytest.fixture
def population(machines: StateMachineStack) -> dict[str, list[Profile]]:
    """1,000 subscribers: 950 not due, 40 due and eligible, 10 due per the index but not to be mailed."""
    client = machines.stack.aws("dynamodb")
    fresh = [make_profile(n, due=False) for n in range(950)]
    eligible = [make_profile(n, due=True, locale="en" if n % 2 else "de") for n in range(950, 990)]
    # One missing required field and one stale field among the eligible ones: they lead the link.
    del eligible[0].fields["city"]
    eligible[2].fields["city"] = FieldValue(value="Köln", confirmed_at=NOW - dt.timedelta(days=400))
    suppressed = [make_profile(n, due=True) for n in (990, 991)]
    ineligible = {
        "paused": [
            make_profile(
                n, due=True, preferences=Preferences(topics={"news": True}, paused_until=NOW + dt.timedelta(days=20))
            )
            for n in (992, 993)
        ],
        "cooldown": [make_profile(n, due=True, last_review_email_at=NOW - dt.timedelta(days=5)) for n in (994, 995)],
        "unconfirmed": [make_profile(n, due=True, status=SubscriptionStatus.PENDING) for n in (996, 997)],
        "no_email_channel": [
            make_profile(n, due=True, preferences=Preferences(topics={"offers": True}, channels={"offers": ["sms"]}))
            for n in (998, 999)
        ],
    }
    write_profiles(machines.stack.table, client, [*fresh, *eligible, *suppressed])
    write_profiles(machines.stack.table, client, [p for group in ineligible.values() for p in group], stale_index=True)
    repo = repository(machines)
    for profile in suppressed:  # e.g. a hard bounce: the address is on the suppression list
        repo.suppress(address_hash(profile.email), "bounce", NOW)
    return {"eligible": eligible, "suppressed": suppressed, **ineligible}


def test_a_periodic_run_mails_exactly_the_eligible_due_profiles(
    machines: StateMachineStack, population: dict[str, list[Profile]]
) -> None:
    execution = machines.run(PERIODIC, {})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    summary = execution.output
    assert summary["due"] == 50
    assert summary["sent"] == 40
    assert summary["failed"] == 0
    assert summary["skipped"] == {
        "suppressed": 2,
        "paused": 2,
        "cooldown": 2,
        "unconfirmed": 2,
        "no_email_channel": 2,
    }
    eligible = population["eligible"]
    assert sorted(sent_to(machines)) == sorted(p.email for p in eligible)

    # The run summary is kept as an item of its own, never under a profile.
    runs = campaign_runs(machines)
    assert len(runs) == 1
    assert runs[0]["status"] == {"S": "finished"}
    assert runs[0]["sent"] == {"N": "40"}
    assert runs[0]["skipped_paused"] == {"N": "2"}

    # The email: what is missing first, "everything is still correct", one-click unsubscribe.
    messages = {str(parsed(message)["To"]): parsed(message) for message in machines.stack.sent_emails()}
    first = messages[eligible[0].email]
    assert first["Subject"] == "Sind Ihre Angaben noch aktuell?"
    assert first["List-Unsubscribe"].startswith("<http://127.0.0.1:3000/unsubscribe/one-click?token=")
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = first.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "Diese Angaben fehlen noch:\n- Ort" in text
    links = [line for line in text.splitlines() if line.startswith("http://127.0.0.1:3000/link?token=")]
    manage, confirm = links[0], links[1]
    assert manage.endswith("&next=/profile%3Ffocus%3Dcity")
    assert parse_qs(urlsplit(manage).query)["next"] == ["/profile?focus=city"]
    assert confirm.endswith("&next=/review")
    stale = messages[eligible[2].email].get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "schon länger nicht bestätigt:\n- Ort" in stale
    english = messages[eligible[3].email]
    assert english["Subject"] == "Is your information still up to date?"
    html = english.get_body(preferencelist=("html",)).get_content()
    assert "Then confirm it here." in html
    assert "&amp;next=/profile" in html

    # The customer's history has one entry for the review email: the request, with the email sent;
    # the cooldown has started.
    repo = repository(machines)
    history = repo.history(eligible[0].id)
    (requested,) = [entry for entry in history if entry.kind == LedgerKind.REVIEW_REQUESTED]
    assert requested.detail["message_id"]
    assert requested.detail["subject"] == messages[eligible[0].email]["Subject"]
    assert requested.detail["campaign"].startswith("periodic:")
    assert LedgerKind.EMAIL_SENT not in [entry.kind for entry in history]
    mailed = repo.get(eligible[0].id)
    assert mailed.last_review_email_at is not None
    assert len(mailed.marketing_emails_at) == 1
    due = next_review_at(mailed, get_settings().catalog)
    assert due is not None
    assert due >= NOW + dt.timedelta(days=29)
    assert repo.get(population["suppressed"][0].id).suppressed
    assert repo.history(population["suppressed"][0].id)[0].kind == LedgerKind.ADDRESS_SUPPRESSED

    # The same day again: nobody is due any more, nothing is sent, and nothing is read in vain.
    second = machines.run(PERIODIC, {})
    assert second.status == "SUCCEEDED"
    assert second.output["status"] == "finished", "the first run did not give up its claim"
    assert second.output["sent"] == 0
    assert second.output["due"] == 0
    assert len(machines.stack.sent_emails()) == 40
    assert len(campaign_runs(machines)) == 2


def test_ses_throttling_is_retried_and_nobody_is_lost(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch, sdk_backoff: list[float]
) -> None:
    due = [make_profile(n, due=True) for n in range(30)]
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    original = SESBackend.send_raw_email
    calls = {"all": 0, "throttled": 0}

    def throttled_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["all"] += 1
        if 4 <= calls["all"] < 12:  # a burst longer than the SDK's own retries
            calls["throttled"] += 1
            raise JsonRESTError("TooManyRequestsException", "Maximum sending rate exceeded.")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SESBackend, "send_raw_email", throttled_send)
    failures: list[str] = []
    invoke = machines.stack.runtime.invoke

    def recording_invoke(spec: Any, payload: Any) -> Any:
        result = invoke(spec, payload)
        if result.function_error:
            failures.append(json.loads(result.payload)["errorType"])
        return result

    monkeypatch.setattr(machines.stack.runtime, "invoke", recording_invoke)
    waits: list[float] = []  # the state machine's backoff, recorded instead of slept
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))

    execution = machines.run(PERIODIC, {})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert calls["throttled"] == 8
    assert sdk_backoff, "the SDK did not retry the throttled sends"
    assert waits, "the state machine did not retry the batch"
    assert "TemporarilyUnavailable" in failures, "the batch was not handed back to the state machine to retry"
    assert sorted(sent_to(machines)) == sorted(p.email for p in due), "someone got no email, or two"
    assert execution.output["sent"] == 30
    assert execution.output["failed"] == 0


def test_dynamodb_throttling_while_recording_a_sent_email_does_not_mail_anyone_twice(
    machines: StateMachineStack, sdk_backoff: list[float]
) -> None:
    due = [make_profile(n, due=True) for n in range(8)]
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    patched = DynamoDBBackend.put_item
    calls = {"ledger": 0, "throttled": 0}

    def throttled_put(self: Any, table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if item_attrs["sk"]["S"].startswith("LEDGER#"):
            calls["ledger"] += 1
            if 2 <= calls["ledger"] <= 5:  # one record: longer than the SDK's own three attempts
                calls["throttled"] += 1
                raise DynamodbException(
                    ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException",
                    "The level of configured throughput...",
                )
        return patched(self, table_name, item_attrs, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoDBBackend, "put_item", throttled_put)
        execution = machines.run(PERIODIC, {})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert calls["throttled"] == 4
    assert sorted(sent_to(machines)) == sorted(p.email for p in due), "someone got no email, or two"
    assert execution.output["sent"] == 8
    repo = repository(machines)
    assert all(repo.get(p.id).last_review_email_at is not None for p in due), "a sent email was not recorded"
    for profile in due:
        kinds = [entry.kind for entry in repo.history(profile.id)]
        assert kinds.count(LedgerKind.REVIEW_REQUESTED) == 1, "the history lacks the email, or has it twice"


def test_a_shard_with_more_due_profiles_than_a_batch_is_sent_page_by_page(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = machines.stack.resources.common_environment
    machines.stack.runtime.env.install_common({**common, "REVIEW_BATCH_SIZE": "3"})
    get_settings.cache_clear()
    due = [make_profile(n, due=True) for n in range(40)]
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    batches: list[list[str]] = []
    invoke = machines.stack.runtime.invoke

    def recording_invoke(spec: Any, payload: Any) -> Any:
        event = json.loads(payload)
        if event.get("step") == "batch":
            batches.append(event["profileIds"])
        return invoke(spec, payload)

    monkeypatch.setattr(machines.stack.runtime, "invoke", recording_invoke)

    execution = machines.run(PERIODIC, {})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["sent"] == 40
    assert sorted(sent_to(machines)) == sorted(p.email for p in due), "someone got no email, or two"
    per_shard = Counter(review_shard(p.id, get_settings().review_shard_count) for p in due)
    assert max(len(batch) for batch in batches) == 3
    assert len(batches) == sum(math.ceil(count / 3) for count in per_shard.values())
    assert sorted(pid for batch in batches for pid in batch) == sorted(p.id for p in due)


def profiles_in_one_shard(count: int, shard: int = 0) -> list[Profile]:
    """``count`` due profiles whose ids all fall into one shard of the ReviewDue index."""
    shards = get_settings().review_shard_count
    numbers = (n for n in range(10**7) if review_shard(f"{n:032x}", shards) == shard)
    return [make_profile(next(numbers), due=True) for _ in range(count)]


def test_a_thousand_due_profiles_in_one_shard_are_all_mailed_at_the_default_batch_size(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production shape: more due profiles in one shard than one batch holds, the template's
    default batch size; only the SES rate is raised so the test does not wait for the pacing."""
    common = machines.stack.resources.common_environment
    batch_size = int(common["REVIEW_BATCH_SIZE"])
    assert batch_size == int(load_template(REPO_ROOT / "template.yaml")["Parameters"]["ReviewBatchSize"]["Default"])
    machines.stack.runtime.env.install_common({**common, "SES_MAX_SEND_RATE": "100000"})
    get_settings.cache_clear()
    due = profiles_in_one_shard(1000)
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    batches: list[int] = []
    invoke = machines.stack.runtime.invoke

    def recording_invoke(spec: Any, payload: Any) -> Any:
        event = json.loads(payload)
        if event.get("step") == "batch":
            batches.append(len(event["profileIds"]))
        return invoke(spec, payload)

    monkeypatch.setattr(machines.stack.runtime, "invoke", recording_invoke)

    execution = machines.run(PERIODIC, {}, timeout=600)

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert (execution.output["due"], execution.output["sent"], execution.output["failed"]) == (1000, 1000, 0)
    recipients = sent_to(machines)
    assert len(recipients) == 1000
    assert sorted(recipients) == sorted(p.email for p in due), "someone got no email, or two"
    assert batches == [batch_size, 1000 - batch_size]


def test_the_sender_accepts_every_batch_the_template_allows() -> None:
    """One source for the batch limit: the parameter's range is what the sender and the settings accept."""
    parameter = load_template(REPO_ROOT / "template.yaml")["Parameters"]["ReviewBatchSize"]
    assert parameter["MaxValue"] == MAX_REVIEW_BATCH_SIZE
    assert parameter["Default"] <= MAX_REVIEW_BATCH_SIZE
    spec = importlib.util.spec_from_file_location("review_send_app", REPO_ROOT / "functions/review_send/app.py")
    assert spec is not None
    assert spec.loader is not None
    send = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(send)
    batch = {"step": "batch", "runId": "r", "runAt": "2026-12-01T00:00:00Z"}
    send.Batch.model_validate({**batch, "profileIds": [f"{n:032x}" for n in range(MAX_REVIEW_BATCH_SIZE)]})
    with pytest.raises(ValueError, match="at most 1000"):
        send.Batch.model_validate({**batch, "profileIds": [f"{n:032x}" for n in range(MAX_REVIEW_BATCH_SIZE + 1)]})


def test_a_batch_that_fails_after_every_retry_is_counted_and_the_other_shards_go_on(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch, sdk_backoff: list[float]
) -> None:
    due = [make_profile(n, due=True) for n in range(12)]  # one stuck profile is over 5 %
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    stuck = due[5]
    original = SESBackend.send_raw_email

    def always_throttled_for_one(self: Any, source: Any, destinations: Any, raw_data: str, *a: Any, **k: Any) -> Any:
        if stuck.email in raw_data:
            raise JsonRESTError("TooManyRequestsException", "Maximum sending rate exceeded.")
        return original(self, source, destinations, raw_data, *a, **k)

    monkeypatch.setattr(SESBackend, "send_raw_email", always_throttled_for_one)
    waits: list[float] = []  # the state machine's backoff, recorded instead of slept
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))

    execution = machines.run(PERIODIC, {})

    # More than the tolerated 5 % failed: the run fails visibly (an alarm watches the executions)
    # and its summary item has the counts.
    assert execution.status == "FAILED"
    assert execution.error == "ReviewRunFailed"
    assert len(waits) == 6, "SendBatch is retried six times before the batch counts as failed"
    assert all(0 <= wait <= 60 for wait in waits)
    shards = get_settings().review_shard_count
    stuck_shard = [p.email for p in due if review_shard(p.id, shards) == review_shard(stuck.id, shards)]
    recipients = sent_to(machines)
    assert len(recipients) == len(set(recipients)), "someone got two emails"
    assert stuck.email not in recipients
    assert set(recipients) >= {p.email for p in due if p.email not in stuck_shard}, "another shard lost someone"
    (run,) = campaign_runs(machines)
    assert run["status"] == {"S": "failed"}
    assert "due profiles failed" in run["run_error"]["S"]
    assert int(run["sent"]["N"]) == len(recipients)
    assert int(run["failed"]["N"]) == len(stuck_shard) - len(set(stuck_shard) & set(recipients))
    assert int(run["sent"]["N"]) + int(run["failed"]["N"]) == int(run["due"]["N"]) == 12


def test_a_batch_that_fails_without_a_trace_counts_all_its_profiles_as_failed(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when counting the failed batch fails too (the sender cannot run at all for a shard),
    the run summary does not hide it: what was selected and never accounted for is failed."""
    due = [make_profile(n, due=True) for n in range(15)]  # one lost shard is over 5 %
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    shards = get_settings().review_shard_count
    broken_shard = review_shard(due[0].id, shards)
    broken_ids = {p.id for p in due if review_shard(p.id, shards) == broken_shard}
    invoke = machines.stack.runtime.invoke

    def crashing_invoke(spec: Any, payload: Any) -> Any:
        event = json.loads(payload)
        if event.get("step") in ("batch", "batch_failed") and broken_ids & set(event["profileIds"]):
            return machines.stack.runtime._error("Runtime.ExitError", "the sender cannot start")  # a broken deploy
        return invoke(spec, payload)

    monkeypatch.setattr(machines.stack.runtime, "invoke", crashing_invoke)
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda _seconds: None))

    execution = machines.run(PERIODIC, {})

    assert execution.status == "FAILED", "a run that lost a shard must not look fine"
    (run,) = campaign_runs(machines)
    assert int(run["due"]["N"]) == 15
    assert int(run["failed"]["N"]) == len(broken_ids)
    assert int(run["sent"]["N"]) == 15 - len(broken_ids)
    assert len(sent_to(machines)) == 15 - len(broken_ids)


def test_a_run_started_while_another_is_still_running_sends_nothing_and_says_so(
    machines: StateMachineStack,
) -> None:
    due = [make_profile(n, due=True) for n in range(6)]
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    runs = CampaignRunRepository(machines.stack.table, machines.stack.aws("dynamodb"))
    assert runs.claim("periodic", "yesterdays-run", NOW, RUN_TIMEOUT)

    skipped = machines.run(PERIODIC, {})

    assert skipped.status == "SUCCEEDED", (skipped.error, skipped.cause)
    assert skipped.output["status"] == "skipped"
    assert skipped.output["error"] == "another periodic run is still running"
    assert skipped.output["sent"] == 0
    assert machines.stack.sent_emails() == []
    assert campaign_runs_by_status(machines) == {"skipped": 1}

    runs.release("periodic", "yesterdays-run", dt.datetime.now(dt.UTC))
    after = machines.run(PERIODIC, {})

    assert after.output["status"] == "finished"
    assert sorted(sent_to(machines)) == sorted(p.email for p in due)


def test_the_claim_of_a_run_stopped_long_ago_lapses(machines: StateMachineStack) -> None:
    due = [make_profile(n, due=True) for n in range(3)]
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    runs = CampaignRunRepository(machines.stack.table, machines.stack.aws("dynamodb"))
    assert runs.claim("periodic", "aborted-run", NOW - RUN_TIMEOUT - dt.timedelta(minutes=1), RUN_TIMEOUT)

    execution = machines.run(PERIODIC, {})

    assert execution.output["status"] == "finished"
    assert len(sent_to(machines)) == 3


def test_a_run_may_take_as_long_as_its_claim_lasts() -> None:
    definition = json.loads((REPO_ROOT / "statemachines" / "periodic_review.asl.json").read_text())
    assert definition["TimeoutSeconds"] == RUN_TIMEOUT.total_seconds()


def test_a_profile_that_cannot_be_mailed_counts_as_failed_and_the_run_goes_on(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = [make_profile(n, due=True) for n in range(40)]  # one failure in 40 is under the tolerated 5 %
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    original = SESBackend.send_raw_email

    def rejecting_send(self: Any, source: Any, destinations: Any, raw_data: str, *args: Any, **kwargs: Any) -> Any:
        if "customer2@example.com" in raw_data:
            raise JsonRESTError("MessageRejected", "Email address is not verified.")
        return original(self, source, destinations, raw_data, *args, **kwargs)

    monkeypatch.setattr(SESBackend, "send_raw_email", rejecting_send)
    execution = machines.run(PERIODIC, {})
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert (execution.output["sent"], execution.output["failed"]) == (39, 1)
    assert sorted(sent_to(machines)) == sorted(p.email for p in due if p.email != "customer2@example.com")
    rejected = repository(machines).get(due[2].id)
    assert rejected.last_review_email_at is None, "the claim was not given back"
    assert next_review_at(rejected, get_settings().catalog) <= NOW, "the customer is no longer due"


# --- event-triggered ----------------------------------------------------------------------------


def purchase(address: str, order: str, days_ago: float = 3) -> dict[str, str]:
    occurred = NOW - dt.timedelta(days=days_ago)
    return {"orderId": order, "email": address, "occurredAt": occurred.isoformat().replace("+00:00", "Z")}


def test_a_purchase_sends_one_review_email_once(machines: StateMachineStack) -> None:
    customer = make_profile(1, due=True, locale="en")
    del customer.fields["city"]
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), [customer, make_profile(2, due=False)])

    machines.put_event("shop", "PurchaseCompleted", purchase("Customer1@Example.com", "o-1"))
    [first] = machines.wait_all(EVENT)
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    assert first.output == {"outcome": "sent", "profileId": customer.id}
    assert sent_to(machines) == [customer.email]
    message = parsed(machines.stack.sent_emails()[0])
    assert message["Subject"] == "Is your information still up to date?"
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "These details are still missing:\n- City" in text

    # The shop delivers the same event again: no second email.
    machines.put_event("shop", "PurchaseCompleted", purchase("customer1@example.com", "o-1"))
    executions = machines.wait_all(EVENT)
    assert len(executions) == 2
    assert all(e.status == "SUCCEEDED" for e in executions)
    assert len(machines.stack.sent_emails()) == 1

    # A purchase with an address nobody has: ends quietly, creates nothing, sends nothing.
    machines.put_event("shop", "PurchaseCompleted", purchase("stranger@example.com", "o-2"))
    outcomes = [e.output for e in machines.wait_all(EVENT)]
    assert {"outcome": "unknown_address"} in outcomes
    assert len(machines.stack.sent_emails()) == 1
    profiles = [item for item in machines.stack.items() if item["sk"]["S"] == "PROFILE"]
    assert len(profiles) == 2
    assert repository(machines).find_by_email("stranger@example.com") is None


def test_a_closed_service_request_of_a_customer_who_is_not_due_sends_nothing(machines: StateMachineStack) -> None:
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), [make_profile(3, due=False)])
    closed = {"requestId": "r-1", "email": "customer3@example.com", "occurredAt": purchase("", "", 2.5)["occurredAt"]}
    machines.put_event("customer-service", "ServiceRequestClosed", closed)
    [execution] = machines.wait_all(EVENT)
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"outcome": "skipped", "reason": "not_due", "profileId": f"{3:032x}"}
    assert machines.stack.sent_emails() == []


@pytest.mark.parametrize(
    "detail",
    [
        {"orderId": "o-9", "occurredAt": "2026-01-05T10:00:00Z"},
        {"orderId": "o-9", "email": "someone@example.com", "occurredAt": "yesterday"},
        {"orderId": "o-9", "email": "not an address", "occurredAt": "2026-01-05T10:00:00Z"},
        {"email": "someone@example.com", "occurredAt": "2026-01-05T10:00:00Z"},
    ],
    ids=["no email", "bad occurredAt", "invalid email", "no order id"],
)
def test_a_malformed_event_fails_clearly_and_is_kept_in_the_dead_letter_queue(
    machines: StateMachineStack, detail: dict[str, str]
) -> None:
    machines.put_event("shop", "PurchaseCompleted", detail)
    [execution] = machines.wait_all(EVENT)
    assert execution.status == "FAILED"
    assert execution.error == "MalformedEvent"
    sqs = machines.stack.aws("sqs")
    queue = machines.stack.resources.refs["ReviewEventDeadLetterQueue"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    kept = json.loads(messages[0]["Body"])
    assert kept["event"]["detail"] == detail
    assert kept["problems"]
    assert machines.stack.sent_emails() == []


def test_an_event_review_waits_until_occurred_at_plus_the_delay(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Wait is real: the email goes out once occurredAt + delay has passed, not before (also
    on a machine west of Greenwich, where moto's own Wait would add hours and this run would not
    end in time)."""
    # The template's delay (the local stack runs with none): the purchase happened two days ago.
    hours = load_template(REPO_ROOT / "template.yaml")["Parameters"]["ReviewEventDelayHours"]["Default"]
    assert hours > 0
    for function in machines.stack.resources.functions.values():
        monkeypatch.setitem(function.environment, "REVIEW_EVENT_DELAY_HOURS", str(hours))
    common = machines.stack.resources.common_environment
    machines.stack.runtime.env.install_common({**common, "REVIEW_EVENT_DELAY_HOURS": str(hours)})
    get_settings.cache_clear()
    delay = dt.timedelta(hours=hours)
    customer = make_profile(4, due=True)
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), [customer])
    # occurredAt + delay lies a few seconds ahead, on a whole second (what a Date header can show).
    due_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=4)
    occurred = due_at - delay
    saved_tz = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        machines.put_event(
            "shop",
            "PurchaseCompleted",
            purchase(customer.email, "o-4", 0) | {"occurredAt": occurred.isoformat().replace("+00:00", "Z")},
        )
        [execution] = machines.wait_all(EVENT, timeout=60)
    finally:
        if saved_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved_tz
        time.tzset()
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["outcome"] == "sent"

    # The execution's history: a Wait until occurredAt + delay, and only after it the review step.
    events = machines.stack.aws("stepfunctions").get_execution_history(executionArn=execution.arn, maxResults=1000)
    history = events["events"]
    kinds = [event["type"] for event in history]
    assert "WaitStateEntered" in kinds, kinds
    entered = history[kinds.index("WaitStateEntered")]
    plan = json.loads(entered["stateEnteredEventDetails"]["input"])["plan"]
    assert dt.datetime.fromisoformat(plan["waitUntil"]) == due_at
    exited = kinds.index("WaitStateExited")
    sending = [i for i, event in enumerate(history) if event["type"] == "TaskStateEntered"][-1]
    assert exited < sending, "the review step ran before the Wait ended"
    # moto waits whole seconds (AWS to the timestamp): a second early is the emulator, not the product.
    tolerance = dt.timedelta(seconds=1)
    assert history[exited]["timestamp"] >= due_at - tolerance

    # What the customer gets: one email, dated no earlier, and the history says when it was sent.
    assert sent_to(machines) == [customer.email]
    [message] = [parsed(sent) for sent in machines.stack.sent_emails()]
    assert message["Date"].datetime >= due_at - tolerance, (message["Date"], due_at)
    (requested,) = [e for e in repository(machines).history(customer.id) if e.kind == LedgerKind.REVIEW_REQUESTED]
    assert requested.at >= due_at - tolerance


# --- at most one review email per customer per cooldown, under concurrency --------------------


def put_purchases(machines: StateMachineStack, address: str, orders: list[str]) -> None:
    """Several purchases of one customer in one PutEvents call, as a shop's batch would send them."""
    bus = machines.stack.resources.refs["EventBus"]
    entries = [
        {"EventBusName": bus, "Source": "shop", "DetailType": "PurchaseCompleted",
         "Detail": json.dumps(purchase(address, order))}
        for order in orders
    ]  # fmt: skip
    response = machines.stack.aws("events").put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0, response


def review_entries(machines: StateMachineStack, profile_id: str) -> int:
    return [entry.kind for entry in repository(machines).history(profile_id)].count(LedgerKind.REVIEW_REQUESTED)


def slow_ses(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Every SES send takes a while, so concurrent executions really overlap."""
    original = SESBackend.send_raw_email

    def slow_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SESBackend, "send_raw_email", slow_send)


def test_five_purchases_of_one_customer_at_once_send_one_review_email(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = make_profile(7, due=True)
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), [customer])
    slow_ses(monkeypatch, 0.3)

    put_purchases(machines, customer.email, [f"order-{n}" for n in range(5)])
    executions = machines.wait_all(EVENT)

    assert len(executions) == 5
    assert all(e.status == "SUCCEEDED" for e in executions), [(e.error, e.cause) for e in executions]
    assert sent_to(machines) == [customer.email], "more than one review email"
    assert review_entries(machines, customer.id) == 1
    outcomes = Counter(e.output["outcome"] for e in executions)
    assert outcomes == {"sent": 1, "skipped": 4}
    assert {e.output.get("reason") for e in executions if e.output["outcome"] == "skipped"} == {"cooldown"}


def test_purchases_during_a_periodic_run_do_not_mail_a_customer_twice(
    machines: StateMachineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = profiles_in_one_shard(12)
    write_profiles(machines.stack.table, machines.stack.aws("dynamodb"), due)
    slow_ses(monkeypatch, 0.2)

    run = machines.start(PERIODIC, {})
    for customer in due[::3]:
        put_purchases(machines, customer.email, [f"{customer.id}-a", f"{customer.id}-b", f"{customer.id}-c"])
    events = machines.wait_all(EVENT)
    periodic = machines.wait(run)

    assert periodic.status == "SUCCEEDED", (periodic.error, periodic.cause)
    assert all(e.status == "SUCCEEDED" for e in events)
    recipients = sent_to(machines)
    assert sorted(recipients) == sorted(p.email for p in due), "someone got no email, or two"
    assert all(review_entries(machines, p.id) == 1 for p in due)
    by_events = sum(1 for e in events if e.output["outcome"] == "sent")
    assert periodic.output["sent"] + by_events == 12
