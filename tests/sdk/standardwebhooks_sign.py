"""Signs a body with the official `standardwebhooks` PyPI package.

Input (argv[1]): JSON {secret, body, id}. Output: JSON object of headers."""
import json
import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

args = json.loads(sys.argv[1])
now = datetime.now(tz=timezone.utc)
signature = Webhook(args["secret"]).sign(args["id"], now, args["body"])
print(json.dumps({
    "webhook-id": args["id"],
    "webhook-timestamp": str(int(now.timestamp())),
    "webhook-signature": signature,
}))
