// What legacy.mjs and mainnet.mjs share: an offline fetch that records
// every request, a fresh signer, and the one-line JSON report.
//
// Import this module BEFORE @permaweb/aoconnect (use a dynamic import for
// aoconnect): aoconnect and @permaweb/ao-scheduler-utils capture `fetch`
// and read GRAPHQL_URL when they are loaded.
import crypto from "node:crypto";

/** Every request aoconnect (or the script) made, in order. */
export const requests = [];

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
const realFetch = globalThis.fetch;

/**
 * Replaces the global fetch: requests to loopback go out and are recorded;
 * any other request is never sent, is recorded as refused, and gets a 502
 * answer (aoconnect's scheduler lookup treats that as "not found here" and
 * falls back to the gateway, as it does when su-router is unreachable).
 */
export function installOfflineFetch(names) {
  globalThis.fetch = async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url ?? String(input));
    const method = (init.method ?? "GET").toUpperCase();
    const entry = { method, to: "refused", path: url.pathname + url.search };
    const item = itemSummary(init.body);
    if (item) entry.item = item;
    requests.push(entry);
    if (!LOOPBACK.has(url.hostname)) {
      entry.url = url.toString();
      entry.status = 502;
      return new Response(`offline test: ${url.origin} was not contacted`, { status: 502 });
    }
    entry.to = names[url.origin] ?? url.origin;
    const res = await realFetch(input, init);
    entry.status = res.status;
    // What came back (aoconnect often reports only "Error sending message").
    entry.answer = (await res.clone().text()).slice(0, 300);
    return res;
  };
}

/** ID and signature type of a raw ANS-104 item body, else undefined. */
function itemSummary(body) {
  if (!(body instanceof Uint8Array) || body.length < 2) return undefined;
  const type = body[0] | (body[1] << 8);
  const sigLength = { 1: 512, 2: 64, 3: 65 }[type];
  if (!sigLength || body.length < 2 + sigLength) return undefined;
  const signature = body.subarray(2, 2 + sigLength);
  const id = crypto.createHash("sha256").update(signature).digest("base64url");
  return { id, signature_type: type, bytes: body.length };
}

/** The origin (scheme://host:port) of a URL given in an env var. */
export function origin(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return new URL(value).origin;
}

/**
 * A fresh signer. `rsa` (the default): a new RSA-4096 JWK wrapped by
 * aoconnect's own createSigner, so items are type 1 (RSA-PSS, Node's
 * default salt length: the maximum, 478 bytes). `ed25519`: a signer
 * function of aoconnect's signer interface over a new ed25519 key, so
 * items are type 2.
 */
export function freshSigner(kind, createSigner) {
  if (kind === "rsa") {
    const { privateKey } = crypto.generateKeyPairSync("rsa", {
      modulusLength: 4096,
      publicExponent: 65537,
    });
    const jwk = privateKey.export({ format: "jwk" });
    const owner = Buffer.from(jwk.n, "base64url");
    return { signer: createSigner(jwk), type: 1, address: address(owner) };
  }
  if (kind === "ed25519") {
    const { privateKey, publicKey } = crypto.generateKeyPairSync("ed25519");
    const owner = publicKey.export({ format: "der", type: "spki" }).subarray(12);
    const addr = address(owner);
    const signer = async (create) => {
      const message = await create({ type: 2, publicKey: owner, alg: "ed25519" });
      const signature = crypto.sign(null, Buffer.from(message), privateKey);
      return { signature, address: addr };
    };
    return { signer, type: 2, address: addr };
  }
  throw new Error(`HB_AO_SIGNER must be rsa or ed25519, not ${kind}`);
}

function address(owner) {
  return crypto.createHash("sha256").update(owner).digest("base64url");
}

/** Runs `flow`; prints its report as one JSON line, or the error and the requests on stderr. */
export async function run(flow) {
  try {
    const report = await flow();
    process.stdout.write(JSON.stringify({ ...report, requests }) + "\n");
  } catch (e) {
    process.stderr.write(`error: ${e?.stack ?? e}\n`);
    process.stderr.write(`requests so far:\n`);
    for (const r of requests) process.stderr.write(`  ${JSON.stringify(r)}\n`);
    process.exit(1);
  }
}
