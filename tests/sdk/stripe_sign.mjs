// Signs a body with the official `stripe` npm package, as Stripe's own test helper does.
// Input (argv[2]): JSON {secret, body}. Output: JSON object of headers.
import Stripe from "stripe";
const { secret, body } = JSON.parse(process.argv[2]);
const stripe = new Stripe("sk_test_sluice");
const header = stripe.webhooks.generateTestHeaderString({ payload: body, secret });
console.log(JSON.stringify({ "stripe-signature": header }));
