// A ParityRail app probe in Node's standard library (docs/app-probe.md).
//
// Run:  PROBE_SECRET=… PORT=8787 node docs/examples/probe_server.mjs
// It answers what each user can use, from USERS_JSON
// ({"cus_…": {"user": "…", "plan": …}}); in your app, look the user up in
// your own database instead. With Express, the same `verify` goes in a
// middleware: pass it `req.originalUrl` and the raw body (express.raw()).

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const SECRET = process.env.PROBE_SECRET;
const PREFIX = "/parityrail/access";
const TOLERANCE = 300; // seconds
const DEPLOY_SHA = process.env.DEPLOY_SHA ?? "dev";
const USERS = JSON.parse(process.env.USERS_JSON ?? "{}");

/** True when `header` is ParityRail's signature of this exact request. */
export function verify(header, pathAndQuery, body) {
  const parts = (header ?? "").split(",");
  const t = parts.find((p) => p.startsWith("t="))?.slice(2) ?? "";
  if (!/^\d+$/.test(t) || Math.abs(Date.now() / 1000 - Number(t)) > TOLERANCE) {
    return false;
  }
  const expected = createHmac("sha256", SECRET)
    .update(`${t}.${pathAndQuery}.`)
    .update(body)
    .digest();
  return parts
    .filter((p) => p.startsWith("v1="))
    .map((p) => Buffer.from(p.slice(3), "hex"))
    .some((s) => s.length === expected.length && timingSafeEqual(s, expected));
}

/** What `customer` can use now, or null when the app has no such user. */
function answer(customer, user) {
  const access = USERS[customer];
  if (!access) return null;
  return {
    customer,
    user: access.user ?? user,
    plan: access.plan ?? null,
    features: access.features ?? [],
    limits: access.limits ?? {},
    active: access.active ?? true,
    deploy_sha: DEPLOY_SHA,
  };
}

function reply(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    // req.url is the request target exactly as it arrived.
    const url = new URL(req.url, "http://probe");
    const known = url.pathname === PREFIX || url.pathname === `${PREFIX}/batch`;
    if (!known) return reply(res, 404, { error: "not found" });
    if (!verify(req.headers["parityrail-signature"], req.url, body)) {
      return reply(res, 401, { error: "bad signature" });
    }
    if (req.method === "GET" && url.pathname === PREFIX) {
      const customer = url.searchParams.get("customer") ?? "";
      const found = answer(customer, url.searchParams.get("user") ?? "");
      return found ? reply(res, 200, found) : reply(res, 404, { customer, found: false });
    }
    if (req.method === "POST" && url.pathname === `${PREFIX}/batch`) {
      const asked = JSON.parse(body.toString()).customers;
      return reply(res, 200, {
        customers: asked.map(
          (c) => answer(c.customer, c.user ?? "") ?? { customer: c.customer, found: false },
        ),
      });
    }
    reply(res, 405, { error: "method not allowed" });
  });
}).listen(Number(process.env.PORT ?? 8787), "127.0.0.1", () => {
  console.log(`probe listening on http://127.0.0.1:${process.env.PORT ?? 8787}${PREFIX}`);
});
