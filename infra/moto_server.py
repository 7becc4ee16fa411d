"""moto's server, with two of its gaps closed where Sluice relies on AWS's behaviour.

- DynamoDB conditional writes made atomic, as they are in DynamoDB. moto serves each request
  in its own thread and checks a write's condition, then applies it, without a lock: two
  concurrent conditional PutItems on one key can both succeed, which real DynamoDB never
  allows (seen here: the duplicate-storm test delivered an event twice). Sluice's
  idempotency rests on that atomicity, so the local stack serialises DynamoDB's item writes.
- SQS refuses a message body or string attribute with characters outside its set
  (`InvalidMessageContents`); moto accepts anything. The edge queues bodies as raw text when SQS allows it, so the
  local stack must refuse what SQS refuses.

Everything else is moto as installed. Usage: same arguments as moto_server.
"""

import re
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main
from moto.sqs.exceptions import SQSException
from moto.sqs.models import SQSBackend

_WRITES = threading.RLock()


def _serialised(method):
    def wrapper(self, *args, **kwargs):
        with _WRITES:
            return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))

# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class InvalidMessageContents(SQSException):
    def __init__(self, char: str):
        super().__init__(
            "InvalidMessageContents",
            f"Invalid binary character '#x{ord(char):X}' was found in the message body, the set "
            "of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | "
            "#x10000 to #x10FFFF",
        )


_send_message = SQSBackend.send_message


def _checked_send_message(self, queue_name, message_body, *args, **kwargs):
    # String attribute values follow the same rule as the body.
    attributes = kwargs.get("message_attributes") or {}  # moto passes it by keyword
    values = [message_body] + [v.get("StringValue") for v in attributes.values()]
    for value in values:
        refused = _REFUSED.search(value) if isinstance(value, str) else None
        if refused:
            raise InvalidMessageContents(refused.group())
    return _send_message(self, queue_name, message_body, *args, **kwargs)


SQSBackend.send_message = _checked_send_message

if __name__ == "__main__":
    main()
