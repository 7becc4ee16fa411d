"""Signs form parameters with the official `twilio` PyPI package's RequestValidator.

Input (argv[1]): JSON {secret, url, body} (body form-encoded). Output: JSON object of headers."""
import json
import sys
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

args = json.loads(sys.argv[1])
params = dict(parse_qsl(args["body"], keep_blank_values=True))
signature = RequestValidator(args["secret"]).compute_signature(args["url"], params)
print(json.dumps({"x-twilio-signature": signature}))
