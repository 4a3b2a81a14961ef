"""Single-table DynamoDB repository for profiles, their ledger, email claims and requests.

Item layout (``pk`` / ``sk``):

* ``PROFILE#<id>`` / ``PROFILE`` — the profile; ``email_key`` feeds the ByEmail index and,
  while a review is scheduled, ``review_shard``/``next_review_at`` feed the sparse ReviewDue index.
* ``PROFILE#<id>`` / ``LEDGER#<time>#<entry id>`` — append-only ledger (changes, consents, emails).
* ``PROFILE#<id>`` / ``REQUEST#<id>`` — the customer's requests.
* ``PROFILE#<id>`` / ``NEWSLETTER#<campaign digest>`` — a reported newsletter recorded for the profile
  (written with its ledger entry; a duplicated report finds it and records nothing), expiring 30 days
  after it was recorded.
* ``EXPORT#<id>`` / ``EXPORT`` — an audience export: its request, status, count and file.
* ``EMAIL#<normalised address>`` / ``EMAIL`` — claim that makes addresses unique (a GSI cannot).
* ``CAMPAIGN#<campaign>`` / ``RUN#<run time>#<run id>`` — summary of a review campaign run.
* ``CAMPAIGN#<campaign>`` / ``ACTIVE`` — the run in progress (no two periodic runs at once).
* ``IDEMPOTENCY#event-review`` / ``<hashed event key>`` — Powertools Idempotency records of the
  event review (one per shop or service event, expiring through ``expires_at``).
* ``PENDING#<address hash>`` / ``SUBSCRIPTION`` — a double opt-in kept aside for an address that has a
  profile (until confirmed, the profile is not touched), expiring through ``expires_at``.
* ``SUPPRESSED#<address hash>`` / ``SUPPRESSED`` — the suppression list, with its reason.
* ``RATE#<form>:<address|client>:<hash>`` / ``RATE`` — the attempts a form's limits counted (sliding
  windows), expiring through ``expires_at``.
* ``PROFILE#<id>`` / ``SMSCODE`` — the SMS code last sent to the profile's number (as an HMAC, never
  the code), expiring through ``expires_at``; used up in the write that confirms the number.
* ``SMSPHONE#<number hash>`` / ``PROFILE#<id>`` — the profiles whose confirmed number it is (a STOP
  reply names only the number); written and removed with ``verified_phone``.

Every profile write is one TransactWriteItems: the profile conditional on its version, the
ledger entries, and the claim swap when the address changes. One exception, by decision: a
review email is claimed with a conditional PutItem of the profile alone, and its "review
requested" entry is put after the email under a key made of the campaign and the profile, so
writing it twice writes it once.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

from selfservice.domain.audience import audience_member, audience_shard
from selfservice.domain.errors import AlreadyExists, InvalidInput, NotFound, TemporarilyUnavailable, VersionConflict
from selfservice.domain.models import (
    CustomerRequest,
    LedgerEntry,
    PendingSubscription,
    Profile,
    normalise_email,
    phone_hash,
    profile_id_of_request,
)
from selfservice.domain.review import review_shard
from selfservice.domain.sms import SmsChallenge

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_THROTTLING = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
_KEY_ATTRIBUTES = (
    "pk",
    "sk",
    "item_type",
    "email_key",
    "review_shard",
    "next_review_at",
    "expires_at",
    "request_status",
    "request_queued",
    "event_type",
    "event_detail",
    "audience_shard",
    "pause_shard",
    "pause_note_at",
)

ReviewScheduler = Callable[[Profile], dt.datetime | None]
_Expiring = TypeVar("_Expiring", bound=BaseModel)
_BATCH_ATTEMPTS = 6
_MAX_TRANSACTION = 100
"""The most operations one TransactWriteItems takes."""
_RATE_ROUNDS = 4


def review_shard_key(number: int) -> str:
    """Partition key of one shard of the sparse ReviewDue index."""
    return f"REVIEW#{number:02d}"


def pause_shard_key(number: int) -> str:
    """Partition key of one shard of the sparse PauseEnding index."""
    return f"PAUSE#{number:02d}"


PAUSE_ENDING = "PauseEnding"


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _profile_key(profile_id: str) -> dict[str, Any]:
    return _to_item({"pk": f"PROFILE#{profile_id}", "sk": "PROFILE"})


def _claim_key(email_key: str) -> dict[str, Any]:
    return _to_item({"pk": f"EMAIL#{email_key}", "sk": "EMAIL"})


def _suppression_key(address_hash: str) -> dict[str, Any]:
    return _to_item({"pk": f"SUPPRESSED#{address_hash}", "sk": "SUPPRESSED"})


def _pending_key(address_hash: str) -> dict[str, Any]:
    return _to_item({"pk": f"PENDING#{address_hash}", "sk": "SUBSCRIPTION"})


def _sms_code_key(profile_id: str) -> dict[str, Any]:
    return _to_item({"pk": f"PROFILE#{profile_id}", "sk": "SMSCODE"})


def _phone_key(phone: str, profile_id: str) -> dict[str, Any]:
    return _to_item({"pk": f"SMSPHONE#{phone_hash(phone)}", "sk": f"PROFILE#{profile_id}"})


def _timestamp(moment: dt.datetime) -> str:
    """Fixed-width UTC ISO-8601, so string order is time order (index sort keys)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ledger_sort_key(moment: dt.datetime) -> str:
    """Where a ledger entry of that moment sorts in its profile (the entry's id follows: ``#<id>``)."""
    return f"LEDGER#{_timestamp(moment)}"


def _strip(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in _KEY_ATTRIBUTES}


def _profile_of(values: dict[str, Any]) -> Profile:
    """A profile from its (deserialised) item; the id comes from the key, the address from the index key if absent."""
    return Profile.model_validate(
        {"email": values["email_key"], **_strip(values), "id": str(values["pk"]).removeprefix("PROFILE#")}
    )


def _failure_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons") or []
    return [reason.get("Code", "None") for reason in reasons]


def _translate(error: ClientError) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    if code in _THROTTLING or "Throttl" in code:
        return TemporarilyUnavailable(code)
    return error


def _update_if(client: Any, **arguments: Any) -> bool:
    """UpdateItem with a ConditionExpression; False (nothing written) when the condition does not hold."""
    try:
        client.update_item(**arguments)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise _translate(error) from error
    return True


REQUESTS_BY_STATUS = "RequestsByStatus"
AUDIENCE_INDEX = "Audience"
_NEWSLETTERS_PER_TRANSACTION = 33
_NEWSLETTER_MARKER_LIFETIME = dt.timedelta(days=30)
"""Recipients per TransactWriteItems (three items each; a transaction takes at most 100)."""


@dataclass
class NewsletterWrites:
    """What :meth:`ProfileRepository.record_newsletters` did, by profile id."""

    written: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def _request_item(request: CustomerRequest) -> dict[str, Any]:
    """The request's item; ``request_status``/``request_queued`` put it in the RequestsByStatus index."""
    values: dict[str, Any] = request.model_dump(mode="json")
    values.update(
        pk=f"PROFILE#{request.profile_id}",
        sk=f"REQUEST#{request.id}",
        item_type="request",
        request_status=request.status.value,
        request_queued=f"{request.created_at.astimezone(dt.UTC).isoformat()}#{request.id}",
    )
    return _to_item(values)


def _request_of(item: dict[str, Any]) -> CustomerRequest:
    return CustomerRequest.model_validate(_strip(item))


class ProfileRepository:
    """Storage port of the domain, implemented on one DynamoDB table."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        schedule: ReviewScheduler,
        shard_count: int,
        pause_note: ReviewScheduler | None = None,
    ) -> None:
        self._table = table_name
        self._client = client
        self._schedule = schedule
        self._shard_count = shard_count
        self._pause_note = pause_note

    # --- item mapping ------------------------------------------------------------------
    def _profile_item(self, profile: Profile) -> dict[str, Any]:
        """The profile item, kept small (every write is billed per started KB): values equal to
        their defaults, the id (the key holds it) and an address already in its normal form (the
        index key holds it) are left out; ``version`` always stays."""
        values: dict[str, Any] = profile.model_dump(mode="json", exclude_defaults=True, exclude={"id"})
        if profile.email == profile.email_key:
            del values["email"]
        values.update(pk=f"PROFILE#{profile.id}", sk="PROFILE", email_key=profile.email_key, version=profile.version)
        if profile.pending_expires_at is not None:
            values["expires_at"] = int(profile.pending_expires_at.timestamp())
        if audience_member(profile):  # the sparse Audience index holds only who can receive something
            values["audience_shard"] = audience_shard(profile.id)
        due = self._schedule(profile)
        if due is not None:
            values["review_shard"] = review_shard_key(review_shard(profile.id, self._shard_count))
            values["next_review_at"] = _timestamp(due)
        note_due = self._pause_note(profile) if self._pause_note is not None else None
        if note_due is not None:  # the sparse PauseEnding index: only pauses whose note is still to come
            values["pause_shard"] = pause_shard_key(review_shard(profile.id, self._shard_count))
            values["pause_note_at"] = _timestamp(note_due)
        return _to_item(values)

    @staticmethod
    def _ledger_item(entry: LedgerEntry) -> dict[str, Any]:
        values: dict[str, Any] = entry.model_dump(mode="json")
        values.update(
            pk=f"PROFILE#{entry.profile_id}", sk=f"{ledger_sort_key(entry.at)}#{entry.id}", item_type="ledger"
        )
        if entry.event is not None:  # the outbox: the stream of the table carries it to the bus
            detail = {**entry.event.detail, "entryId": entry.id}
            values.update(event_type=entry.event.type, event_detail=json.dumps(detail, separators=(",", ":")))
        return _to_item(values)

    def _put_expiring(self, key: dict[str, Any], item_type: str, model: BaseModel, expires: dt.datetime) -> None:
        """Put an item kept until ``expires`` (table TTL), replacing the one under ``key``."""
        values: dict[str, Any] = model.model_dump(mode="json")
        values.update(item_type=item_type, expires_at=int(expires.timestamp()))
        try:
            self._client.put_item(TableName=self._table, Item={**_to_item(values), **key})
        except ClientError as error:
            raise _translate(error) from error

    def _get_expiring(self, key: dict[str, Any], model: type[_Expiring]) -> _Expiring | None:
        try:
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        except ClientError as error:
            raise _translate(error) from error
        if "Item" not in response:
            return None
        values = _from_item(response["Item"])
        expires_at = dt.datetime.fromtimestamp(int(values["expires_at"]), dt.UTC)
        return model.model_validate({**_strip(values), "expires_at": expires_at})

    def _put_if_version(self, profile: Profile, expected_version: int) -> dict[str, Any]:
        """The profile put, only over the version the caller read (no lost updates)."""
        return {
            "TableName": self._table,
            "Item": self._profile_item(profile),
            "ConditionExpression": "attribute_exists(pk) AND version = :expected",
            "ExpressionAttributeValues": _to_item({":expected": expected_version}),
        }

    def _put_ledger(self, entry: LedgerEntry) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": self._ledger_item(entry)}}

    def _keep_claim(self, profile: Profile) -> dict[str, Any]:
        """The email claim of a pending profile that was confirmed no longer expires."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": _claim_key(profile.email_key),
                "UpdateExpression": "REMOVE expires_at",
                "ConditionExpression": "profile_id = :id",
                "ExpressionAttributeValues": _to_item({":id": profile.id}),
            }
        }

    # --- index keys of a new release ---------------------------------------------------
    def stored_profiles(self, segment: int, segments: int) -> Iterator[Profile]:
        """Every profile of one segment of a parallel scan (an operator's one-off pass, never a request)."""
        paginator = self._client.get_paginator("scan")
        request = {"TableName": self._table, "Segment": segment, "TotalSegments": segments,
                   "FilterExpression": "sk = :profile",
                   "ExpressionAttributeValues": _to_item({":profile": "PROFILE"})}  # fmt: skip
        for page in paginator.paginate(**request):
            for item in page["Items"]:
                yield _profile_of(_from_item(item))

    def rewrite_with_index_keys(self, profile: Profile) -> bool:
        """Write the profile again as it is, with the index keys this release writes (a profile stored
        before an index existed enters it); False when it changed meanwhile (that write indexed it)."""
        try:
            self._client.put_item(**self._put_if_version(profile, profile.version))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise _translate(error) from error
        return True

    # --- reads -------------------------------------------------------------------------
    def get(self, profile_id: str) -> Profile:
        """One GetItem (strongly consistent: a customer sees their own write)."""
        try:
            response = self._client.get_item(TableName=self._table, Key=_profile_key(profile_id), ConsistentRead=True)
        except ClientError as error:
            raise _translate(error) from error
        if "Item" not in response:
            raise NotFound(profile_id)
        return _profile_of(_from_item(response["Item"]))

    def find_by_email(self, address: str) -> Profile | None:
        """The profile of an address: a Query on the keys-only ByEmail index, then a consistent GetItem.

        The index is eventually consistent; the profile read after it is not, and an entry that
        lags behind an address change (the profile has another address by now) finds nothing.
        """
        email_key = normalise_email(address)
        try:
            response = self._client.query(
                TableName=self._table,
                IndexName="ByEmail",
                KeyConditionExpression="email_key = :key",
                ExpressionAttributeValues=_to_item({":key": email_key}),
                Limit=1,
            )
        except ClientError as error:
            raise _translate(error) from error
        items = response.get("Items", [])
        if not items:
            return None
        try:
            profile = self.get(str(_from_item(items[0])["pk"]).removeprefix("PROFILE#"))
        except NotFound:
            return None
        return profile if profile.email_key == email_key else None

    def history(self, profile_id: str, limit: int = 100) -> list[LedgerEntry]:
        """Newest ledger entries first."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=_to_item({":pk": f"PROFILE#{profile_id}", ":prefix": "LEDGER#"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [LedgerEntry.model_validate(_strip(_from_item(item))) for item in response.get("Items", [])]

    def load_all(self, profile_id: str) -> tuple[Profile, list[LedgerEntry], list[CustomerRequest]]:
        """Profile, ledger (newest first) and requests in one Query: they share the partition."""
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": _to_item({":pk": f"PROFILE#{profile_id}"}),
            "ConsistentRead": True,
        }
        while True:
            try:
                response = self._client.query(**arguments)
            except ClientError as error:
                raise _translate(error) from error
            items.extend(_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        profile_items = [item for item in items if item["sk"] == "PROFILE"]
        if not profile_items:
            raise NotFound(profile_id)
        profile = _profile_of(profile_items[0])
        ledger = [LedgerEntry.model_validate(_strip(i)) for i in items if str(i["sk"]).startswith("LEDGER#")]
        found = [_request_of(i) for i in items if str(i["sk"]).startswith("REQUEST#")]
        ledger.reverse()
        found.sort(key=lambda request: request.created_at, reverse=True)
        return profile, ledger, found

    def requests(self, profile_id: str) -> list[CustomerRequest]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=_to_item({":pk": f"PROFILE#{profile_id}", ":prefix": "REQUEST#"}),
        )
        found = [_request_of(_from_item(item)) for item in response.get("Items", [])]
        return sorted(found, key=lambda request: request.created_at, reverse=True)

    # --- writes ------------------------------------------------------------------------
    def create_operations(
        self, profile: Profile, entries: list[LedgerEntry], expires_at: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """The writes of a new profile: the profile and its email claim (each only if absent), its ledger entries."""
        item = self._profile_item(profile)
        expires_at = expires_at or profile.pending_expires_at
        if expires_at is not None:
            item["expires_at"] = _serializer.serialize(int(expires_at.timestamp()))
        claim = _to_item(
            {"pk": f"EMAIL#{profile.email_key}", "sk": "EMAIL", "item_type": "email_claim", "profile_id": profile.id}
        )
        if expires_at is not None:
            claim["expires_at"] = _serializer.serialize(int(expires_at.timestamp()))
        operations = [
            {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self._table, "Item": claim, "ConditionExpression": "attribute_not_exists(pk)"}},
            *[self._put_ledger(entry) for entry in entries],
        ]
        if profile.verified_phone is not None:  # (a profile imported with its confirmed number)
            phone = {**_phone_key(profile.verified_phone, profile.id), **_to_item({"item_type": "sms_phone"})}
            operations.append({"Put": {"TableName": self._table, "Item": phone}})
        return operations

    def save_operations(
        self, profile: Profile, expected_version: int, entries: list[LedgerEntry], *, keep: bool = False
    ) -> list[dict[str, Any]]:
        """The writes of a changed profile that keeps its address and number: the profile at
        ``expected_version``, its ledger entries and, with ``keep``, the end of a pending claim's expiry."""
        operations = [{"Put": self._put_if_version(profile, expected_version)}, *map(self._put_ledger, entries)]
        if keep:
            operations.append(self._keep_claim(profile))
        return operations

    def create(self, profile: Profile, entries: list[LedgerEntry], expires_at: dt.datetime | None = None) -> None:
        """Create the profile, claim its address and write its first ledger entries atomically."""
        operations = self.create_operations(profile, entries, expires_at)
        try:
            self._client.transact_write_items(TransactItems=operations)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                codes = _failure_codes(error)
                if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                    raise AlreadyExists(profile.email_key) from None
                if codes and codes[0] == "ConditionalCheckFailed":
                    raise AlreadyExists(profile.id) from None
            raise _translate(error) from error

    def save(
        self,
        profile: Profile,
        expected_version: int,
        entries: list[LedgerEntry],
        previous_email: str | None = None,
        *,
        keep: bool = False,
        previous_verified_phone: str | None = None,
        sms_code_used: str | None = None,
    ) -> None:
        """Replace the profile if it is still at ``expected_version``, with its ledger entries, in one transaction.

        ``previous_email`` is the address before this change; when it differs the claim moves.
        ``keep`` ends the expiry of a pending profile (confirmed): the profile item is written
        without ``expires_at`` anyway, and the email claim loses its ``expires_at`` too.
        ``previous_verified_phone``: the confirmed number before this change; when it differs, the
        number's entry (for STOP replies) moves. ``sms_code_used``: the digest of the SMS code that
        confirmed the number; its item is deleted only if it still holds that code (else VersionConflict:
        the code was used or replaced meanwhile).
        """
        operations: list[dict[str, Any]] = [
            {"Put": self._put_if_version(profile, expected_version)},
            *[self._put_ledger(entry) for entry in entries],
        ]
        if keep:
            operations.append(self._keep_claim(profile))
        if previous_verified_phone != profile.verified_phone:
            if previous_verified_phone is not None:
                key = _phone_key(previous_verified_phone, profile.id)
                operations.append({"Delete": {"TableName": self._table, "Key": key}})
            if profile.verified_phone is not None:
                item = {**_phone_key(profile.verified_phone, profile.id), **_to_item({"item_type": "sms_phone"})}
                operations.append({"Put": {"TableName": self._table, "Item": item}})
        if sms_code_used is not None:
            operations.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": _sms_code_key(profile.id),
                        "ConditionExpression": "code_hash = :code",
                        "ExpressionAttributeValues": _to_item({":code": sms_code_used}),
                    }
                }
            )
        moved = previous_email is not None and normalise_email(previous_email) != profile.email_key
        if moved and previous_email is not None:
            claim = _to_item(
                {
                    "pk": f"EMAIL#{profile.email_key}",
                    "sk": "EMAIL",
                    "item_type": "email_claim",
                    "profile_id": profile.id,
                }
            )
            operations.append(
                {"Put": {"TableName": self._table, "Item": claim, "ConditionExpression": "attribute_not_exists(pk)"}}
            )
            operations.append(
                {"Delete": {"TableName": self._table, "Key": _claim_key(normalise_email(previous_email))}}
            )
        try:
            self._client.transact_write_items(TransactItems=operations)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                codes = _failure_codes(error)
                if codes and codes[0] == "ConditionalCheckFailed":
                    raise VersionConflict(expected_version) from None
                if moved and len(codes) >= 2 and codes[-2] == "ConditionalCheckFailed":
                    raise AlreadyExists(profile.email_key) from None
                if "ConditionalCheckFailed" in codes:  # the SMS code was used or replaced meanwhile
                    raise VersionConflict(expected_version) from None
            raise _translate(error) from error

    def replace_if_version(self, profile: Profile, expected_version: int) -> bool:
        """Replace the profile if it is still at ``expected_version``, without a ledger entry.

        One conditional PutItem, not a transaction: only for the review claim and its release,
        whose ledger entry follows the email as an idempotent put (DESIGN.md, Storage). False
        when another write came first (nothing written).
        """
        try:
            self._client.put_item(**self._put_if_version(profile, expected_version))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise _translate(error) from error
        return True

    def append(self, entry: LedgerEntry) -> None:
        """Add one ledger entry on its own (e.g. an email sent), without touching the profile."""
        try:
            self._client.put_item(TableName=self._table, Item=self._ledger_item(entry))
        except ClientError as error:
            raise _translate(error) from error

    def add_request(self, request: CustomerRequest, entry: LedgerEntry) -> None:
        operations = [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": _profile_key(request.profile_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {"Put": {"TableName": self._table, "Item": _request_item(request)}},
            self._put_ledger(entry),
        ]
        self._transact(operations, NotFound(request.profile_id))

    def add_request_without_profile(self, request: CustomerRequest, entry: LedgerEntry) -> None:
        """A request sent without signing in (accessibility feedback): under an id of its own that names
        no profile, with its ledger entry (the outbox of its event) in the same partition."""
        operations = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _request_item(request),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._put_ledger(entry),
        ]
        self._transact(operations, AlreadyExists(request.id))

    def get_request(self, request_id: str) -> CustomerRequest:
        """One consistent GetItem: the id names the profile's partition."""
        profile_id = profile_id_of_request(request_id)
        if profile_id is None:
            raise NotFound(request_id, what="request")
        key = _to_item({"pk": f"PROFILE#{profile_id}", "sk": f"REQUEST#{request_id}"})
        try:
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        except ClientError as error:
            raise _translate(error) from error
        if "Item" not in response:
            raise NotFound(request_id, what="request")
        return _request_of(_from_item(response["Item"]))

    def list_requests(
        self, status: str, request_type: str | None, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[CustomerRequest], dict[str, Any] | None]:
        """A page of requests with ``status``, oldest first, from the sparse RequestsByStatus index.

        ``cursor`` is the previous page's continuation (None for the first page); the second value
        is this page's, None on the last page. A type filter may make a page shorter than ``limit``.
        """
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": REQUESTS_BY_STATUS,
            "KeyConditionExpression": "request_status = :status",
            "ExpressionAttributeValues": _to_item({":status": status}),
            "ScanIndexForward": True,
            "Limit": limit,
        }
        if request_type is not None:
            arguments["FilterExpression"] = "#type = :type"
            arguments["ExpressionAttributeNames"] = {"#type": "type"}
            arguments["ExpressionAttributeValues"].update(_to_item({":type": request_type}))
        if cursor is not None:
            arguments["ExclusiveStartKey"] = _to_item(cursor)
        try:
            response = self._client.query(**arguments)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException" and cursor is not None:
                raise InvalidInput("cursor", "is not a cursor of this list") from None
            raise _translate(error) from error
        found = [_request_of(_from_item(item)) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return found, _from_item(last) if last else None

    def save_request(self, request: CustomerRequest, expected_version: int, entry: LedgerEntry) -> None:
        """Write a changed request at ``expected_version`` (else VersionConflict) with its ledger entry."""
        operations = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _request_item(request),
                    # Requests stored before versions were kept count as version 1.
                    "ConditionExpression": "attribute_exists(pk) AND "
                    "(version = :expected OR attribute_not_exists(version))",
                    "ExpressionAttributeValues": _to_item({":expected": expected_version}),
                }
            },
            self._put_ledger(entry),
        ]
        self._transact(operations, VersionConflict(expected_version))

    def _transact(self, operations: list[dict[str, Any]], when_first_condition_fails: Exception) -> None:
        """One transaction; ``when_first_condition_fails`` is raised if its first condition did not hold."""
        try:
            self._client.transact_write_items(TransactItems=operations)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException" and _failure_codes(error)[:1] == [
                "ConditionalCheckFailed"
            ]:
                raise when_first_condition_fails from None
            raise _translate(error) from error

    def write_groups(self, groups: Sequence[list[dict[str, Any]]]) -> set[int]:
        """Write groups of operations (each group one profile's, from :meth:`create_operations` or
        :meth:`save_operations`), packed into transactions of at most 100 operations: a group is
        never split, so each profile is written whole or not at all, and far fewer calls are made
        than one transaction per profile.

        Returns the indices of the groups whose condition failed (the address was claimed or the
        profile changed meanwhile): nothing of them is written; the rest of their transaction is
        written without them. Transaction conflicts with other writers are retried with backoff.
        """
        failed: set[int] = set()
        chunk: list[int] = []
        size = 0
        chunks: list[list[int]] = []
        for index, group in enumerate(groups):
            if len(group) > _MAX_TRANSACTION:
                raise ValueError("a group has more operations than one transaction takes")
            if size + len(group) > _MAX_TRANSACTION:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(index)
            size += len(group)
        if chunk:
            chunks.append(chunk)
        for members in chunks:
            failed |= self._write_chunk(groups, members)
        return failed

    def _write_chunk(self, groups: Sequence[list[dict[str, Any]]], members: list[int]) -> set[int]:
        failed: set[int] = set()
        for attempt in range(_BATCH_ATTEMPTS):
            if not members:
                return failed
            operations = [operation for index in members for operation in groups[index]]
            if not operations:  # (only empty groups: nothing to write)
                return failed
            try:
                self._client.transact_write_items(TransactItems=operations)
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise _translate(error) from error
                codes = _failure_codes(error)
                owners = [index for index in members for _operation in groups[index]]
                refused = {owners[at] for at, code in enumerate(codes) if code == "ConditionalCheckFailed"}
                if not refused and not any(code in ("TransactionConflict", "ThrottlingError") for code in codes):
                    raise _translate(error) from error
                failed |= refused
                members = [index for index in members if index not in refused]
                if not refused:
                    time.sleep(min(0.05 * 2**attempt, 1.0))
                continue
            return failed
        raise TemporarilyUnavailable("TransactionConflict")

    def email_claims(self, email_keys: Sequence[str]) -> dict[str, str]:
        """The profile id of each of these (normalised) addresses that has a profile, read from the
        addresses' claims (consistent BatchGetItem, 100 per call)."""
        keys = [_claim_key(email_key) for email_key in dict.fromkeys(email_keys)]
        return {
            str(item["pk"]).removeprefix("EMAIL#"): str(item["profile_id"])
            for item in self._batch_get(keys, consistent=True)
        }

    def consent_topics_since(self, profile_id: str, since: dt.datetime) -> set[str]:
        """The topics of consent entries (given or withdrawn) later than ``since``: a Query of the
        ledger from that time on (its sort key starts with the entry's time)."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :after AND :end",
            "FilterExpression": "#kind IN (:given, :withdrawn)",
            "ProjectionExpression": "#topics",
            "ExpressionAttributeNames": {"#kind": "kind", "#topics": "topics"},
            "ExpressionAttributeValues": _to_item(
                {
                    ":pk": f"PROFILE#{profile_id}",
                    ":after": f"LEDGER#{_timestamp(since)}#~",
                    ":end": "LEDGER#~",
                    ":given": "consent_given",
                    ":withdrawn": "consent_withdrawn",
                }
            ),
            "ConsistentRead": True,
        }
        topics: set[str] = set()
        while True:
            try:
                response = self._client.query(**arguments)
            except ClientError as error:
                raise _translate(error) from error
            for item in response.get("Items", []):
                topics.update(str(topic) for topic in _from_item(item).get("topics", []))
            if "LastEvaluatedKey" not in response:
                return topics
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _keys_under(self, profile_id: str) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": _to_item({":pk": f"PROFILE#{profile_id}"}),
            "ProjectionExpression": "pk, sk",
        }
        while True:
            response = self._client.query(**arguments)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def erase(self, profile: Profile) -> int:
        """Delete every item of the profile (profile, ledger, requests) and its email claim."""
        keys = [*self._keys_under(profile.id), _claim_key(profile.email_key)]
        if profile.verified_phone is not None:
            keys.append(_phone_key(profile.verified_phone, profile.id))
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: batch}
            while pending:
                response = self._client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
        return len(keys)

    # --- the SMS double opt-in ---------------------------------------------------------------
    def put_sms_challenge(self, challenge: SmsChallenge) -> None:
        """Keep the code just sent (replacing the profile's previous one), until it expires."""
        self._put_expiring(_sms_code_key(challenge.profile_id), "sms_code", challenge, challenge.expires_at)

    def sms_challenge(self, profile_id: str) -> SmsChallenge | None:
        return self._get_expiring(_sms_code_key(profile_id), SmsChallenge)

    def take_sms_attempt(self, challenge: SmsChallenge, max_attempts: int) -> bool:
        """One try of this code, taken atomically while fewer than ``max_attempts`` were taken and it
        is still the profile's code. False (nothing taken) when it is used up, replaced or used."""
        return _update_if(
            self._client,
            TableName=self._table,
            Key=_sms_code_key(challenge.profile_id),
            UpdateExpression="ADD attempts :one",
            ConditionExpression="code_hash = :code AND (attempts < :max OR attribute_not_exists(attempts))",
            ExpressionAttributeValues=_to_item({":one": 1, ":code": challenge.code_hash, ":max": max_attempts}),
        )

    def profiles_with_phone(self, phone: str) -> list[str]:
        """Ids of the profiles whose confirmed number ``phone`` is (one Query, no index)."""
        try:
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=_to_item({":pk": f"SMSPHONE#{phone_hash(phone)}"}),
                ConsistentRead=True,
            )
        except ClientError as error:
            raise _translate(error) from error
        return [str(_from_item(item)["sk"]).removeprefix("PROFILE#") for item in response.get("Items", [])]

    # --- rate limits and the suppression list -------------------------------------------
    def count_attempt(self, key: str, rules: Sequence[tuple[int, dt.timedelta]], now: dt.datetime) -> bool:
        """Count one attempt for ``key`` unless that breaks a rule ``(attempts, window)``: at most
        ``attempts`` in any span of ``window`` (sliding windows). False (nothing counted) when it does.

        One item per key, ``RATE#<key>`` / ``RATE``, keeps the times of the attempts counted (a
        sliding-window log: no more of them than the largest ``attempts``, none older than the longest
        window). It is read consistently and written back only if no other attempt was counted in
        between (conditional on its revision), so under concurrency every count stands on all counts
        before it and no limit is ever exceeded. An attempt that loses that race reads again; after a
        few lost races it is refused (fails closed). The table's TTL removes the item once its last
        attempt has left the longest window.
        """
        longest_ms = max(int(window.total_seconds() * 1000) for _attempts, window in rules)
        kept = max(attempts for attempts, _window in rules)
        now_ms = int(now.timestamp() * 1000)
        key_item = _to_item({"pk": f"RATE#{key}", "sk": "RATE"})
        for _round in range(_RATE_ROUNDS):
            try:
                found = self._client.get_item(TableName=self._table, Key=key_item, ConsistentRead=True)
            except ClientError as error:
                raise _translate(error) from error
            item = _from_item(found.get("Item", {}))
            revision = int(item.get("revision", 0))
            times = sorted(int(at) for at in item.get("attempts", []) if now_ms - int(at) < longest_ms)
            for attempts, window in rules:
                span = int(window.total_seconds() * 1000)
                if sum(1 for at in times if now_ms - at < span) >= attempts:
                    return False
            times = [*times, now_ms][-kept:]
            written = {
                "pk": f"RATE#{key}",
                "sk": "RATE",
                "item_type": "rate_limit",
                "attempts": times,
                "revision": revision + 1,
                "expires_at": (max(times) + longest_ms) // 1000 + 1,
            }
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=_to_item(written),
                    ConditionExpression="attribute_not_exists(revision) OR revision = :revision",
                    ExpressionAttributeValues=_to_item({":revision": revision}),
                )
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue  # another attempt was counted meanwhile: read again
                raise _translate(error) from error
            return True
        return False

    def suppress(self, address_hash: str, reason: str, now: dt.datetime) -> None:
        """Keep an address (only as a hash) from every future marketing email."""
        item = _to_item(
            {
                "pk": f"SUPPRESSED#{address_hash}",
                "sk": "SUPPRESSED",
                "item_type": "suppression",
                "reason": reason,
                "at": _timestamp(now),
            }
        )
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except ClientError as error:
            raise _translate(error) from error

    def is_suppressed(self, address_hash: str) -> bool:
        return self.suppression_reason(address_hash) is not None

    def suppression_reason(self, address_hash: str) -> str | None:
        """Why the address is on the suppression list (``hard_bounce``, ``complaint``, ``erased``), or None."""
        try:
            response = self._client.get_item(TableName=self._table, Key=_suppression_key(address_hash))
        except ClientError as error:
            raise _translate(error) from error
        return str(response["Item"].get("reason", {}).get("S", "unknown")) if "Item" in response else None

    # --- subscriptions kept aside until confirmed -------------------------------------------
    def put_pending_subscription(self, address_hash: str, pending: PendingSubscription) -> None:
        """Keep ``pending`` for the address (replacing an older request), until it expires."""
        self._put_expiring(_pending_key(address_hash), "pending_subscription", pending, pending.expires_at)

    def pending_subscription(self, address_hash: str) -> PendingSubscription | None:
        return self._get_expiring(_pending_key(address_hash), PendingSubscription)

    def confirm_subscription(
        self,
        profile: Profile,
        expected_version: int,
        entries: list[LedgerEntry],
        *,
        keep: bool,
        pending: PendingSubscription | None,
        address_hash: str,
        lift_erasure: bool,
        now: dt.datetime,
    ) -> None:
        """A confirmed double opt-in in one transaction: the profile (conditional on its version) and
        its ledger entries; ``keep``: the email claim of a pending profile no longer expires;
        ``pending``: the request kept aside is marked confirmed (only if it is still the address's
        unconfirmed request); ``lift_erasure``: the address leaves the suppression list, if it is on it
        because its profile was erased (not if it bounced or complained meanwhile).

        VersionConflict when the profile or the suppression list changed since they were read,
        NotFound when the request kept aside was replaced or confirmed meanwhile.
        """
        operations: list[dict[str, Any]] = [
            {"Put": self._put_if_version(profile, expected_version)},
            *[self._put_ledger(entry) for entry in entries],
        ]
        if keep:
            operations.append(self._keep_claim(profile))
        pending_at = len(operations)
        if pending is not None:
            operations.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _pending_key(address_hash),
                        "UpdateExpression": "SET confirmed_at = :now",
                        "ConditionExpression": "request_id = :request AND attribute_not_exists(confirmed_at)",
                        "ExpressionAttributeValues": _to_item(
                            {":now": now.isoformat(), ":request": pending.request_id}
                        ),
                    }
                }
            )
        if lift_erasure:
            operations.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": _suppression_key(address_hash),
                        "ConditionExpression": "attribute_not_exists(pk) OR reason = :erased",
                        "ExpressionAttributeValues": _to_item({":erased": "erased"}),
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=operations)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                codes = _failure_codes(error)
                if pending is not None and codes[pending_at : pending_at + 1] == ["ConditionalCheckFailed"]:
                    raise NotFound("pending subscription") from None
                if "ConditionalCheckFailed" in codes:
                    raise VersionConflict(expected_version) from None
            raise _translate(error) from error

    # --- review campaigns ----------------------------------------------------------------
    def due_for_review(
        self, shard: str, until: dt.datetime, limit: int, cursor: dict[str, str] | None = None
    ) -> tuple[list[str], dict[str, str] | None]:
        """One page of the sparse ReviewDue index: ids of profiles of ``shard`` due by ``until``.

        The index holds only profiles that will need a review, so this reads nothing else;
        the returned cursor (None on the last page) continues where the page ended.
        """
        return self._due_page("ReviewDue", "review_shard", "next_review_at", shard, until, limit, cursor)

    def pause_notes_due(
        self, shard: str, until: dt.datetime, limit: int, cursor: dict[str, str] | None = None
    ) -> tuple[list[str], dict[str, str] | None]:
        """One page of the sparse PauseEnding index: ids of profiles of ``shard`` whose pause-ending
        note is due by ``until`` (only paused subscribers not yet told are in it)."""
        return self._due_page(PAUSE_ENDING, "pause_shard", "pause_note_at", shard, until, limit, cursor)

    def _due_page(
        self,
        index: str,
        shard_attribute: str,
        time_attribute: str,
        shard: str,
        until: dt.datetime,
        limit: int,
        cursor: dict[str, str] | None,
    ) -> tuple[list[str], dict[str, str] | None]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{shard_attribute} = :shard AND {time_attribute} <= :until",
            "ExpressionAttributeValues": _to_item({":shard": shard, ":until": _timestamp(until)}),
            "Limit": limit,
        }
        if cursor:
            arguments["ExclusiveStartKey"] = _to_item(cursor)
        try:
            response = self._client.query(**arguments)
        except ClientError as error:
            raise _translate(error) from error
        ids = [str(_from_item(item)["pk"]).removeprefix("PROFILE#") for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return ids, ({key: str(value) for key, value in _from_item(last).items()} if last else None)

    def _batch_get(self, keys: list[dict[str, Any]], consistent: bool) -> list[dict[str, Any]]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys with a short backoff."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {self._table: {"Keys": keys[start : start + 100], "ConsistentRead": consistent}}
            for attempt in range(_BATCH_ATTEMPTS):
                try:
                    response = self._client.batch_get_item(RequestItems=pending)
                except ClientError as error:
                    raise _translate(error) from error
                found.extend(_from_item(item) for item in response.get("Responses", {}).get(self._table, []))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise TemporarilyUnavailable("UnprocessedKeys")
        return found

    def get_many(self, profile_ids: list[str]) -> list[Profile]:
        """The profiles that still exist, strongly consistent (BatchGetItem, 100 keys per call)."""
        items = self._batch_get([_profile_key(profile_id) for profile_id in profile_ids], consistent=True)
        return [_profile_of(item) for item in items]

    def suppressed_among(self, address_hashes: list[str]) -> set[str]:
        """Which of these address hashes are on the suppression list (one BatchGetItem per 100)."""
        unique = dict.fromkeys(address_hashes)
        keys = [_to_item({"pk": f"SUPPRESSED#{hashed}", "sk": "SUPPRESSED"}) for hashed in unique]
        return {str(item["pk"]).removeprefix("SUPPRESSED#") for item in self._batch_get(keys, consistent=False)}

    def reindex(self, profile: Profile) -> None:
        """Bring the profile's ReviewDue entry in line with its current state (no other change).

        Conditional on the version read, so a concurrent write (which reindexes itself) wins.
        """
        due = self._schedule(profile)
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": _profile_key(profile.id),
            "ConditionExpression": "version = :version",
        }
        if due is None:
            arguments["UpdateExpression"] = "REMOVE review_shard, next_review_at"
            arguments["ExpressionAttributeValues"] = _to_item({":version": profile.version})
        else:
            arguments["UpdateExpression"] = "SET review_shard = :shard, next_review_at = :due"
            arguments["ExpressionAttributeValues"] = _to_item(
                {
                    ":version": profile.version,
                    ":shard": review_shard_key(review_shard(profile.id, self._shard_count)),
                    ":due": _timestamp(due),
                }
            )
        _update_if(self._client, **arguments)  # False: a concurrent write reindexed the profile itself

    # --- audiences and reported newsletters ----------------------------------------------
    def audience_page(
        self, shard: str, limit: int, start_after: dict[str, str] | None = None
    ) -> tuple[list[Profile], dict[str, str] | None]:
        """Up to ``limit`` profiles of one shard of the sparse Audience index, in key order, and the
        key to continue after (None at the shard's end). The index holds whole profiles of subscribers
        only (projection ALL), so a page is one Query and reads no ledger items."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": AUDIENCE_INDEX,
            "KeyConditionExpression": "audience_shard = :shard",
            "ExpressionAttributeValues": _to_item({":shard": shard}),
            "Limit": limit,
        }
        if start_after:
            arguments["ExclusiveStartKey"] = _to_item(start_after)
        try:
            response = self._client.query(**arguments)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException" and start_after:
                raise InvalidInput("cursor", "is not a cursor of this list") from None
            raise _translate(error) from error
        profiles = [_profile_of(_from_item(item)) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return profiles, ({key: str(value) for key, value in _from_item(last).items()} if last else None)

    def record_newsletters(
        self, recorded: Sequence[tuple[Profile, int, LedgerEntry, str]], now: dt.datetime
    ) -> NewsletterWrites:
        """Write each ``(profile, version read, ledger entry, campaign digest)``: the profile conditional
        on the version read, its ``newsletter_sent`` entry, and the marker ``NEWSLETTER#<digest>``
        only if the profile has none yet, all three in one transaction item group (33 recipients per
        TransactWriteItems: its limit is 100 items). A recipient whose marker exists is a duplicate
        (nothing written); one whose version moved is a conflict (the caller reads it again); the
        others of a cancelled transaction are written in the next one.
        """
        outcome = NewsletterWrites()
        pending = list(recorded)
        for _round in range(_BATCH_ATTEMPTS):
            retry: list[tuple[Profile, int, LedgerEntry, str]] = []
            for start in range(0, len(pending), _NEWSLETTERS_PER_TRANSACTION):
                group = pending[start : start + _NEWSLETTERS_PER_TRANSACTION]
                operations: list[dict[str, Any]] = []
                for profile, version, entry, digest in group:
                    marker = _to_item(
                        {
                            "pk": f"PROFILE#{profile.id}",
                            "sk": f"NEWSLETTER#{digest}",
                            "item_type": "newsletter_marker",
                            "entry_id": entry.id,
                            # Longer than any redelivery: EventBridge retries a day, the queues keep 4 and 14.
                            "expires_at": int((now + _NEWSLETTER_MARKER_LIFETIME).timestamp()),
                        }
                    )
                    operations += [
                        {"Put": self._put_if_version(profile, version)},
                        self._put_ledger(entry),
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": marker,
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                try:
                    self._client.transact_write_items(TransactItems=operations)
                except ClientError as error:
                    if error.response["Error"]["Code"] != "TransactionCanceledException":
                        raise _translate(error) from error
                    codes = _failure_codes(error)
                    if not any(code == "ConditionalCheckFailed" for code in codes):
                        retry += group  # throttled or in conflict with another transaction: all again
                        time.sleep(min(0.05 * 2**_round, 1.0))
                        continue
                    for index, item in enumerate(group):
                        profile_code, marker_code = (
                            codes[3 * index : 3 * index + 1],
                            codes[3 * index + 2 : 3 * index + 3],
                        )
                        if marker_code == ["ConditionalCheckFailed"]:
                            outcome.duplicates.append(item[0].id)
                        elif profile_code == ["ConditionalCheckFailed"]:
                            outcome.conflicts.append(item[0].id)
                        else:
                            retry.append(item)
                    continue
                outcome.written += [item[0].id for item in group]
            if not retry:
                return outcome
            pending = retry
        raise TemporarilyUnavailable("TransactionCanceledException")


class CampaignRunRepository:
    """Summaries of review campaign runs: ``CAMPAIGN#<campaign>`` / ``RUN#<run time>#<run id>``.

    Batches add their counts atomically (``ADD``), so a run's summary needs no arithmetic in
    the state machine and survives a partly failed run. Items expire after ``retention``.
    """

    def __init__(self, table_name: str, client: Any, retention: dt.timedelta = dt.timedelta(days=400)) -> None:
        self._table = table_name
        self._client = client
        self._retention = retention

    @staticmethod
    def _key(campaign: str, run_at: dt.datetime, run_id: str) -> dict[str, Any]:
        return _to_item({"pk": f"CAMPAIGN#{campaign}", "sk": f"RUN#{_timestamp(run_at)}#{run_id}"})

    def claim(self, campaign: str, run_id: str, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Make ``run_id`` the campaign's only active run; False while another run holds an unexpired claim.

        One item, ``CAMPAIGN#<campaign>`` / ``ACTIVE``, written conditionally: two runs started at
        once (the schedule and a person) cannot both pass. The same run may claim again (a retried
        step); a claim older than ``lease`` (a run that was stopped before it could release) lapses.
        """
        return _update_if(
            self._client,
            TableName=self._table,
            Key=_to_item({"pk": f"CAMPAIGN#{campaign}", "sk": "ACTIVE"}),
            UpdateExpression="SET item_type = :type, run_id = :run, claimed_at = :at, expires_at = :until",
            ConditionExpression="attribute_not_exists(run_id) OR run_id = :run OR expires_at <= :now",
            ExpressionAttributeValues=_to_item(
                {
                    ":type": "campaign_claim",
                    ":run": run_id,
                    ":at": _timestamp(now),
                    ":until": int((now + lease).timestamp()),
                    ":now": int(now.timestamp()),
                }
            ),
        )

    def release(self, campaign: str, run_id: str, now: dt.datetime) -> None:
        """End ``run_id``'s claim (if it still holds it); the table's TTL removes the item later."""
        _update_if(
            self._client,
            TableName=self._table,
            Key=_to_item({"pk": f"CAMPAIGN#{campaign}", "sk": "ACTIVE"}),
            UpdateExpression="SET expires_at = :now",
            ConditionExpression="run_id = :run",
            ExpressionAttributeValues=_to_item({":run": run_id, ":now": int(now.timestamp())}),
        )

    def start(self, campaign: str, run_id: str, run_at: dt.datetime, now: dt.datetime) -> None:
        """Create the run item (a repeated start of the same run keeps what was counted)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(campaign, run_at, run_id),
                UpdateExpression=(
                    "SET item_type = :type, campaign = :campaign, run_id = :run, run_at = :run_at, "
                    "started_at = if_not_exists(started_at, :now), #status = :running, expires_at = :expires"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_item(
                    {
                        ":type": "campaign_run",
                        ":campaign": campaign,
                        ":run": run_id,
                        ":run_at": _timestamp(run_at),
                        ":now": _timestamp(now),
                        ":running": "running",
                        ":expires": int((now + self._retention).timestamp()),
                    }
                ),
            )
        except ClientError as error:
            raise _translate(error) from error

    def get(self, campaign: str, run_id: str, run_at: dt.datetime) -> dict[str, Any]:
        """The run item as it stands (strongly consistent: every batch's counts are in it)."""
        try:
            response = self._client.get_item(
                TableName=self._table, Key=self._key(campaign, run_at, run_id), ConsistentRead=True
            )
        except ClientError as error:
            raise _translate(error) from error
        return _from_item(response.get("Item", {}))

    def add(self, campaign: str, run_id: str, run_at: dt.datetime, counts: dict[str, int]) -> None:
        """Add ``counts`` (attribute name -> number) to the run's counters in one UpdateItem."""
        counts = {name: value for name, value in counts.items() if value}
        if not counts:
            return
        names = {f"#c{index}": name for index, name in enumerate(counts)}
        values = {f":c{index}": value for index, value in enumerate(counts.values())}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(campaign, run_at, run_id),
                UpdateExpression="ADD " + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(values),
            )
        except ClientError as error:
            raise _translate(error) from error

    def finish(
        self, campaign: str, run_id: str, run_at: dt.datetime, now: dt.datetime, status: str, run_error: str | None
    ) -> dict[str, Any]:
        """Mark the run finished and return the whole item (its counters included)."""
        values: dict[str, Any] = {":status": status, ":now": _timestamp(now)}
        expression = "SET #status = :status, finished_at = :now"
        if run_error:
            expression += ", run_error = :error"
            values[":error"] = run_error
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key(campaign, run_at, run_id),
                UpdateExpression=expression,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_item(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            raise _translate(error) from error
        return _from_item(response.get("Attributes", {}))


class AudienceExportRepository:
    """Audience exports: ``EXPORT#<id>`` / ``EXPORT`` with the request, status, count and file key.

    Items expire (``expires_at``) with the files they name.
    """

    def __init__(self, table_name: str, client: Any, retention: dt.timedelta = dt.timedelta(days=2)) -> None:
        self._table = table_name
        self._client = client
        self._retention = retention

    @staticmethod
    def _key(export_id: str) -> dict[str, Any]:
        return _to_item({"pk": f"EXPORT#{export_id}", "sk": "EXPORT"})

    def create(self, export_id: str, request: dict[str, str], now: dt.datetime) -> None:
        item = {
            "pk": f"EXPORT#{export_id}",
            "sk": "EXPORT",
            "item_type": "audience_export",
            "status": "running",
            "request": request,
            "created_at": _timestamp(now),
            "expires_at": int((now + self._retention).timestamp()),
        }
        try:
            self._client.put_item(
                TableName=self._table, Item=_to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            raise _translate(error) from error

    def get(self, export_id: str) -> dict[str, Any] | None:
        try:
            response = self._client.get_item(TableName=self._table, Key=self._key(export_id), ConsistentRead=True)
        except ClientError as error:
            raise _translate(error) from error
        return _from_item(response["Item"]) if "Item" in response else None

    def finish(self, export_id: str, status: str, now: dt.datetime, count: int | None, file_key: str | None) -> None:
        """Mark the export succeeded (with its count and file) or failed; only a running export changes."""
        values: dict[str, Any] = {":status": status, ":now": _timestamp(now), ":running": "running"}
        expression = "SET #status = :status, finished_at = :now"
        if count is not None:
            expression += ", item_count = :count"
            values[":count"] = count
        if file_key is not None:
            expression += ", file_key = :file"
            values[":file"] = file_key
        _update_if(
            self._client,
            TableName=self._table,
            Key=self._key(export_id),
            UpdateExpression=expression,
            ConditionExpression="#status = :running",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_to_item(values),
        )


class ImportJobRepository:
    """Import jobs: ``IMPORTJOB#<id>`` / ``JOB`` with the status and the counts so far.

    Batches add their counts atomically (``ADD``), so the job's totals need no arithmetic in the state
    machine and are right even when batches run at once. Items expire after ``retention``.
    """

    def __init__(self, table_name: str, client: Any, retention: dt.timedelta = dt.timedelta(days=30)) -> None:
        self._table = table_name
        self._client = client
        self._retention = retention

    @staticmethod
    def _key(job_id: str) -> dict[str, Any]:
        return _to_item({"pk": f"IMPORTJOB#{job_id}", "sk": "JOB"})

    def create(self, job_id: str, now: dt.datetime, evidence: dict[str, str]) -> None:
        item = _to_item(
            {
                "pk": f"IMPORTJOB#{job_id}",
                "sk": "JOB",
                "item_type": "import_job",
                "status": "awaiting_upload",
                "created_at": _timestamp(now),
                "evidence": evidence,
                "expires_at": int((now + self._retention).timestamp()),
            }
        )
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            raise _translate(error) from error

    def get(self, job_id: str) -> dict[str, Any]:
        try:
            response = self._client.get_item(TableName=self._table, Key=self._key(job_id), ConsistentRead=True)
        except ClientError as error:
            raise _translate(error) from error
        if "Item" not in response:
            raise NotFound(job_id, what="import job")
        return _from_item(response["Item"])

    def move(self, job_id: str, before: str, after: str, now: dt.datetime, **values: Any) -> bool:
        """Set the status ``after`` (and ``values``) if it is ``before``; False when it is not."""
        names = {"#status": "status", **{f"#v{i}": name for i, name in enumerate(values)}}
        expression = "SET #status = :after, updated_at = :now" + "".join(f", #v{i} = :v{i}" for i in range(len(values)))
        attributes = {":after": after, ":before": before, ":now": _timestamp(now)}
        attributes |= {f":v{i}": value for i, value in enumerate(values.values())}
        return _update_if(
            self._client,
            TableName=self._table,
            Key=self._key(job_id),
            UpdateExpression=expression,
            ConditionExpression="#status = :before",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=_to_item(attributes),
        )

    def add(self, job_id: str, counts: dict[str, int]) -> None:
        """Add ``counts`` (created, updated, unchanged, rejected, batches_done) in one UpdateItem."""
        counts = {name: value for name, value in counts.items() if value}
        if not counts:
            return
        names = {f"#c{index}": name for index, name in enumerate(counts)}
        values = {f":c{index}": value for index, value in enumerate(counts.values())}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(job_id),
                UpdateExpression="ADD " + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(values),
            )
        except ClientError as error:
            raise _translate(error) from error
