// Test harness: a mock core gateway / cloud API on 127.0.0.1 and the built worker under
// workerd (miniflare) with D1, KV, the Cache API and a mock AI binding.
import { createHash, createHmac, createSign, generateKeyPairSync, sign } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export const CORE_TOKEN = "core-service-token";
export const SIGNING_KEY = "edge-signing-key";
export const CLOUD_KEY = "sk-cloud-test";
export const JWT_SECRET = "jwt-test-secret";
export const KEYS = { acme: "sk-acme-123", beta: "sk-beta-456" };

export const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const b64url = (b) => Buffer.from(b).toString("base64url");

export function hs256(claims, secret = JWT_SECRET) {
  const data = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  return `${data}.${createHmac("sha256", secret).update(data).digest("base64url")}`;
}

export const ecKeys = generateKeyPairSync("ec", { namedCurve: "P-256" });
export function es256(claims, key = ecKeys.privateKey) {
  const data = `${b64url(JSON.stringify({ alg: "ES256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign("sha256", Buffer.from(data), { key, dsaEncoding: "ieee-p1363" });
  return `${data}.${b64url(sig)}`;
}

/** The mock core gateway (/v1/...) and cloud API (/cloud/v1/...): records every request. */
export function startOrigin() {
  const requests = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", async () => {
      const cloud = req.url.startsWith("/cloud/");
      const rec = { path: req.url, headers: req.headers, body: JSON.parse(raw || "{}"), at: Date.now() };
      requests.push(rec);
      const want = cloud ? CLOUD_KEY : CORE_TOKEN;
      if (req.headers.authorization !== `Bearer ${want}`) {
        res.writeHead(401, { "content-type": "application/json" });
        return res.end(JSON.stringify({ error: { message: "bad token", type: "authentication_error", param: null, code: null } }));
      }
      const { model, messages = [], stream } = rec.body;
      if (model === "core-error") {
        res.writeHead(500, { "content-type": "application/json" });
        return res.end(JSON.stringify({ error: { message: "core exploded", type: "api_error", param: null, code: null } }));
      }
      const last = messages.length ? messages[messages.length - 1].content : "";
      const text = `${cloud ? "cloud" : "core"}[${messages.length}] ${model}: ${last}`;
      const usage = { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 };
      const base = { id: "chatcmpl-origin", created: 1700000000, model };
      if (!stream) {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ ...base, object: "chat.completion",
          choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }], usage }));
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (choices, extra = {}) => `data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices, ...extra })}\n\n`;
      const events = [chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }])];
      for (const w of text.split(/(?<= )/)) events.push(chunk([{ index: 0, delta: { content: w }, finish_reason: null }]));
      events.push(chunk([{ index: 0, delta: {}, finish_reason: "stop" }]));
      if (rec.body.stream_options?.include_usage) events.push(chunk([], { usage }));
      events.push("data: [DONE]\n\n");
      for (const e of events) {
        res.write(e);
        rec.lastChunkAt = Date.now();
        await new Promise((r) => setTimeout(r, 60));
      }
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, requests, url: `http://127.0.0.1:${server.address().port}` })),
  );
}

export const ROUTES = {
  rules: [
    { model: "llama-3.1-8b", target: "workers_ai" },
    { model: "flaky*", target: "workers_ai" },
    { model: "@cf/*", target: "workers_ai" },
    { model: "cloud-*", target: "cloud", upstream_model: "gpt-4o-mini" },
    { model: "*", target: "core" },
  ],
  workers_ai_models: {
    "llama-3.1-8b": "@cf/meta/llama-3.1-8b-instruct",
    flaky: "@cf/test/fail",
    "flaky-stream": "@cf/test/fail-stream",
  },
};

/**
 * Conductor policy routing (the core gateway's rule schema, compiled by the same engine):
 * the core's example rules over the edge's three destinations.
 */
export const POLICY_ROUTES = {
  policy: {
    rules: [
      { name: "oversized-output", when: "has(request.max_tokens) && request.max_tokens > 32768",
        deny: { status: 400, message: "max_tokens above 32768 is not served" } },
      { name: "eu-residency", when: 'request.tenant.residency == "eu"',
        filter: '(deployment.cloud == "azure" && deployment.region == "westeurope") || deployment.cloud == "onprem"',
        order: 'deployment.cloud == "azure" ? 0 : 1' },
      { name: "small-at-edge", when: 'request.model == "chat-small"',
        order: 'deployment.cloud == "cloudflare" ? 0 : 1' },
      { name: "cheapest-fast", when: '"cost" in request.tags', filter: "deployment.healthy",
        order: "deployment.price_input + deployment.price_output" },
      { name: "core-first", order: 'deployment.provider == "core" ? 0 : 1' },
    ],
  },
  destinations: [
    { name: "workers-ai", target: "workers_ai", models: ["chat-small"], cloud: "cloudflare",
      region: "edge", upstream_model: "@cf/meta/llama-3.1-8b-instruct", price_input: 0.03, price_output: 0.2 },
    { name: "core", target: "core", cloud: "onprem", price_input: 0.4, price_output: 0.4 },
    { name: "cloud", target: "cloud", cloud: "azure", region: "westeurope", upstream_model: "gpt-4o-mini",
      price_input: 0.15, price_output: 0.6 },
  ],
  tenants: { beta: { residency: "eu", region: "westeurope" } },
};

/** Starts the worker (routing document `routes`); returns { mf, url, db, cacheKv, configKv }. */
export async function startWorker(originUrl, routes = ROUTES) {
  const aiScript = `${readFileSync(join(root, "mock-ai/ai.js"), "utf8")}\nexport default function (env) { return new Ai(env); }\n`;
  const mf = new Miniflare({
    cf: false, d1Persist: false, kvPersist: false, cachePersist: false,
    workers: [
      {
        name: "edge", rootPath: root, scriptPath: "build/index.js", modules: true,
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        compatibilityDate: "2025-09-23", cache: true,
        d1Databases: { DB: "edge-sessions" }, kvNamespaces: ["CACHE_KV", "CONFIG_KV"],
        bindings: {
          CORE_URL: originUrl, CORE_API_KEY: CORE_TOKEN, EDGE_SIGNING_KEY: SIGNING_KEY,
          CLOUD_BASE_URL: `${originUrl}/cloud/v1`, CLOUD_API_KEY: CLOUD_KEY,
          API_KEYS: JSON.stringify({ [sha256(KEYS.acme)]: "acme", [sha256(KEYS.beta)]: "beta" }),
          JWT_HS256_SECRET: JWT_SECRET,
          JWT_PUBLIC_KEY: ecKeys.publicKey.export({ type: "spki", format: "pem" }),
          ROUTES: JSON.stringify(routes), SESSION_TTL_SECONDS: "3600", CACHE_TTL_SECONDS: "600",
        },
        wrappedBindings: { AI: { scriptName: "mock-ai" } },
      },
      // A wrapped binding runs with the compatibility date of the worker that binds it.
      { name: "mock-ai", modules: true, script: aiScript },
    ],
  });
  let url;
  try {
    url = await mf.ready;
  } catch (e) {
    await mf.dispose();
    throw e;
  }
  const db = await mf.getD1Database("DB");
  for (const f of readdirSync(join(root, "migrations")).sort()) {
    const sql = readFileSync(join(root, "migrations", f), "utf8").replace(/--.*$/gm, "");
    for (const stmt of sql.split(";").map((s) => s.trim()).filter(Boolean)) await db.prepare(stmt).run();
  }
  return { mf, url, db, cacheKv: await mf.getKVNamespace("CACHE_KV"), configKv: await mf.getKVNamespace("CONFIG_KV") };
}

/** Polls `fn` until it returns a truthy value (writes after the answer land via waitUntil). */
export async function eventually(fn, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Parses an SSE body into its data payloads (JSON-decoded, except [DONE]). */
export function sseData(text) {
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6))
    .map((d) => (d === "[DONE]" ? d : JSON.parse(d)));
}

export function sseContent(text) {
  return sseData(text).filter((d) => d !== "[DONE]").map((d) => d.choices?.[0]?.delta?.content ?? "").join("");
}
