"""moto's server, with DynamoDB conditional writes made atomic as they are in DynamoDB.

moto serves each request in its own thread and checks a write's condition, then applies
it, without a lock: two concurrent conditional PutItems on one key can both succeed, which
real DynamoDB never allows (seen here: the duplicate-storm test delivered an event twice).
Sluice's idempotency rests on that atomicity, so the local stack serialises DynamoDB's
item writes. Everything else is moto as installed. Usage: same arguments as moto_server.
"""

import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

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

if __name__ == "__main__":
    main()
