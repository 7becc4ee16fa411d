// Signs a body with GitHub's official `@octokit/webhooks-methods`.
// Input (argv[2]): JSON {secret, body, id}. Output: JSON object of headers.
import { sign } from "@octokit/webhooks-methods";
const { secret, body, id } = JSON.parse(process.argv[2]);
const signature = await sign(secret, body);
console.log(JSON.stringify({ "x-hub-signature-256": signature, "x-github-delivery": id }));
