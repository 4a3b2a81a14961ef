"""The hand-off of the address forms: an asynchronous invocation of the address-request function.

Lambda queues an ``Event`` invocation and answers at once, whatever the request will turn out to
be; it retries a failed run twice and then keeps the event in the function's dead-letter queue.
The function's name is ``ADDRESS_REQUEST_FUNCTION`` (template Globals).
"""

from __future__ import annotations

from selfservice import aws
from selfservice.usecases.ports import AddressRequest


class LambdaHandOff:
    def __init__(self, function_name: str) -> None:
        self._function_name = function_name

    def submit(self, request: AddressRequest) -> None:
        if not self._function_name:
            raise RuntimeError("ADDRESS_REQUEST_FUNCTION is not set: the address forms cannot hand over")
        aws.client("lambda").invoke(
            FunctionName=self._function_name,
            InvocationType="Event",
            Payload=request.model_dump_json().encode("utf-8"),
        )
