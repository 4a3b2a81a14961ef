"""Putting events on the bus: refused entries are put again; a bus that keeps refusing is reported."""

import json
from typing import Any

from botocore.exceptions import ClientError

from selfservice.events import RETRY_PAUSES, SOURCE, EventPublisher

REFUSED = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]}
ACCEPTED = {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}


class FakeEvents:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> Any:
        self.calls.append(Entries)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_an_entry_refused_twice_is_put_again_after_growing_pauses() -> None:
    client, pauses = FakeEvents(REFUSED, REFUSED, ACCEPTED), []
    publisher = EventPublisher(client, "bus", "SelfService", sleep=pauses.append)

    assert publisher.publish("ProfileChanged", {"profileId": "p-1"}) is True

    assert pauses == list(RETRY_PAUSES[:2])
    assert len(client.calls) == 3
    [entry] = client.calls[0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (SOURCE, "ProfileChanged", "bus")
    assert json.loads(entry["Detail"]) == {"profileId": "p-1"}


def test_a_bus_that_keeps_refusing_is_counted_and_the_caller_goes_on(capsys: Any) -> None:
    client = FakeEvents(*[REFUSED] * (len(RETRY_PAUSES) + 1))
    publisher = EventPublisher(client, "bus", "SelfService", sleep=lambda _: None)

    assert publisher.publish("RequestSubmitted", {"requestId": "r-1", "profileId": "p-1"}) is False

    assert len(client.calls) == len(RETRY_PAUSES) + 1
    assert '"EventPublishFailed":[1.0]' in capsys.readouterr().out


def test_an_error_the_sdk_already_retried_is_not_retried_again() -> None:
    refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")
    client = FakeEvents(refused)
    publisher = EventPublisher(client, "bus", "SelfService", sleep=lambda _: None)

    assert publisher.publish("Subscribed", {"profileId": "p-1"}) is False
    assert len(client.calls) == 1
