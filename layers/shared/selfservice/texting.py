"""Sending an SMS: Amazon SNS ``Publish`` to a phone number (README, SMS, says why SNS).

Transactional (codes are time-critical: AWS routes them for delivery, not cost), from the sender ID
and origination number the template's parameters name, if any.
"""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

from selfservice.domain.errors import TemporarilyUnavailable


class SmsNotSent(Exception):
    """SNS refused the SMS (e.g. a number it cannot reach, or the account's SMS spending limit)."""


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> str:
        """Send ``text`` to ``phone`` (E.164); the provider's message id, or SmsNotSent."""
        ...


class SnsSmsSender:
    def __init__(self, sns: Any, sender_id: str = "", origination_number: str = "") -> None:
        self._sns = sns
        attributes = {"AWS.SNS.SMS.SMSType": "Transactional"}
        if sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = sender_id
        if origination_number:
            attributes["AWS.MM.SMS.OriginationNumber"] = origination_number
        self._attributes = {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}

    def send(self, phone: str, text: str) -> str:
        try:
            response = self._sns.publish(PhoneNumber=phone, Message=text, MessageAttributes=self._attributes)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("Throttling", "ThrottlingException", "ThrottledException", "InternalError"):
                raise TemporarilyUnavailable(code) from error
            raise SmsNotSent(code) from error
        return str(response.get("MessageId", ""))
