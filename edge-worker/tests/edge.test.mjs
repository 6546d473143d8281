// End-to-end tests of the built worker under workerd (miniflare), fully offline:
// auth, D1 sessions, edge cache, routing to the mock AI binding / mock core / mock cloud.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  CORE_TOKEN, KEYS, SIGNING_KEY, ecKeys, es256, eventually, hs256, sha256, sseContent, sseData,
  startOrigin, startWorker,
} from "./harness.mjs";

let origin, w;
before(async () => {
  origin = await startOrigin();
  w = await startWorker(origin.url);
});
after(async () => {
  await w?.mf.dispose();
  origin?.server.close();
});

const now = () => Math.floor(Date.now() / 1000);
function call(path, { key = KEYS.acme, token, body, headers = {}, method } = {}) {
  const h = { ...headers };
  if (token ?? key) h.authorization = `Bearer ${token ?? key}`;
  if (body !== undefined) h["content-type"] = "application/json";
  return w.mf.dispatchFetch(new URL(path, w.url), {
    method: method ?? (body !== undefined ? "POST" : "GET"),
    headers: h,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}
const chat = (body, opts = {}) => call("/v1/chat/completions", { ...opts, body });
const user = (content) => [{ role: "user", content }];

async function expectError(res, status, type) {
  assert.equal(res.status, status);
  const j = await res.json();
  assert.equal(typeof j.error.message, "string");
  assert.equal(j.error.type, type);
  assert.ok("param" in j.error && "code" in j.error);
  return j;
}

describe("basics", () => {
  test("healthz needs no key", async () => {
    const res = await w.mf.dispatchFetch(new URL("/healthz", w.url));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
  });

  test("unknown route and malformed body are OpenAI-shaped errors", async () => {
    await expectError(await call("/v1/nope"), 404, "invalid_request_error");
    const j = await expectError(await chat("{not json"), 400, "invalid_request_error");
    assert.match(j.error.message, /JSON/);
    const m = await expectError(await chat({ messages: user("x") }), 400, "invalid_request_error");
    assert.equal(m.error.param, "model");
  });

  test("models lists named routes", async () => {
    const res = await call("/v1/models");
    assert.equal(res.status, 200);
    const j = await res.json();
    assert.equal(j.object, "list");
    const ids = j.data.map((m) => m.id);
    assert.ok(ids.includes("llama-3.1-8b"));
    assert.equal(j.data.find((m) => m.id === "llama-3.1-8b").owned_by, "workers_ai");
  });
});

describe("auth", () => {
  const body = { model: "llama-3.1-8b", messages: user("hi") };
  test("missing, unknown and malformed keys are rejected", async () => {
    const j = await expectError(await chat(body, { key: "" }), 401, "authentication_error");
    assert.equal(j.error.code, "invalid_api_key");
    await expectError(await chat(body, { key: "sk-wrong" }), 401, "authentication_error");
    await expectError(await chat(body, { headers: { authorization: "Basic Zm9vOmJhcg==" }, key: "" }), 401, "authentication_error");
  });

  test("JWTs: HS256 and ES256 accepted; expired, forged and tenant-less rejected", async () => {
    const exp = now() + 600;
    assert.equal((await chat(body, { token: hs256({ tenant: "acme", exp }) })).status, 200);
    assert.equal((await chat(body, { token: es256({ sub: "acme", exp }) })).status, 200);
    await expectError(await chat(body, { token: hs256({ tenant: "acme", exp: now() - 3600 }) }), 401, "authentication_error");
    await expectError(await chat(body, { token: hs256({ tenant: "acme", exp }, "wrong-secret") }), 401, "authentication_error");
    await expectError(await chat(body, { token: hs256({ exp }) }), 401, "authentication_error");
    const other = (await import("node:crypto")).generateKeyPairSync("ec", { namedCurve: "P-256" });
    await expectError(await chat(body, { token: es256({ sub: "acme", exp }, other.privateKey) }), 401, "authentication_error");
    assert.ok(ecKeys.publicKey);
  });

  test("hashed keys stored in CONFIG_KV authenticate", async () => {
    await w.configKv.put(`apikey:${sha256("sk-from-kv")}`, JSON.stringify({ tenant: "gamma" }));
    assert.equal((await chat(body, { key: "sk-from-kv" })).status, 200);
  });
});

describe("routing", () => {
  test("Workers AI, JSON: model mapped to @cf/ and answer in OpenAI format", async () => {
    const res = await chat({ model: "llama-3.1-8b", messages: user("hello") });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "workers_ai");
    const j = await res.json();
    assert.equal(j.object, "chat.completion");
    assert.equal(j.model, "llama-3.1-8b");
    assert.equal(j.choices[0].message.content, "echo[1] @cf/meta/llama-3.1-8b-instruct: hello");
    assert.equal(j.choices[0].finish_reason, "stop");
    assert.equal(j.usage.prompt_tokens, 7);
  });

  test("Workers AI, stream: SSE translated to chat.completion.chunk", async () => {
    const res = await chat({ model: "llama-3.1-8b", messages: user("stream me"), stream: true,
      stream_options: { include_usage: true } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /text\/event-stream/);
    const text = await res.text();
    const data = sseData(text);
    assert.equal(data.at(-1), "[DONE]");
    assert.equal(data[0].object, "chat.completion.chunk");
    assert.equal(data[0].choices[0].delta.role, "assistant");
    assert.equal(sseContent(text), "echo[1] @cf/meta/llama-3.1-8b-instruct: stream me");
    assert.ok(data.some((d) => d.choices?.[0]?.finish_reason === "stop"));
    assert.equal(data.at(-2).usage.total_tokens > 0, true);
  });

  test("core: streamed through chunk by chunk, tenant signed, injected usage stripped", async () => {
    const t0 = Date.now();
    const res = await chat({ model: "core-model", messages: user("one two three four five"), stream: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "core");
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let text = "", firstAt = 0, chunks = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!firstAt) firstAt = Date.now();
      chunks++;
      text += dec.decode(value, { stream: true });
    }
    const rec = origin.requests.at(-1);
    assert.equal(rec.path, "/v1/chat/completions");
    assert.ok(firstAt < rec.lastChunkAt, `first chunk at +${firstAt - t0} ms, origin's last at +${rec.lastChunkAt - t0} ms`);
    assert.ok(chunks >= 3, `chunks=${chunks}`);
    assert.equal(sseContent(text), "core[1] core-model: one two three four five");
    assert.ok(!text.includes('"usage"'), "client did not ask for usage");
    assert.equal(rec.body.stream_options.include_usage, true, "edge asks the core for usage");
    // service token and signed tenant
    assert.equal(rec.headers.authorization, `Bearer ${CORE_TOKEN}`);
    assert.equal(rec.headers["x-datamind-tenant"], "acme");
    const ts = rec.headers["x-datamind-edge-ts"];
    const sig = createHmac("sha256", SIGNING_KEY).update(`${ts}.acme`).digest("hex");
    assert.equal(rec.headers["x-datamind-edge-signature"], `v1=${sig}`);
    assert.ok(Math.abs(Number(ts) - now()) < 60);
  });

  test("cloud API: key from secrets, upstream model rewritten", async () => {
    const res = await chat({ model: "cloud-fast", messages: user("hi cloud") });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "cloud");
    const rec = origin.requests.at(-1);
    assert.equal(rec.path, "/cloud/v1/chat/completions");
    assert.equal(rec.headers.authorization, "Bearer sk-cloud-test");
    assert.equal(rec.body.model, "gpt-4o-mini");
    assert.equal(rec.headers["x-datamind-tenant"], undefined, "tenant is not sent to third parties");
    assert.equal((await res.json()).choices[0].message.content, "cloud[1] gpt-4o-mini: hi cloud");
  });

  test("Workers AI failing before the first byte falls back to the core", async () => {
    let res = await chat({ model: "flaky", messages: user("fallback json") });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "core;fallback-from=workers_ai");
    assert.equal((await res.json()).choices[0].message.content, "core[1] flaky: fallback json");
    res = await chat({ model: "flaky-stream", messages: user("fallback stream"), stream: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "core;fallback-from=workers_ai");
    assert.equal(sseContent(await res.text()), "core[1] flaky-stream: fallback stream");
  });

  test("upstream errors pass through with their status", async () => {
    const res = await chat({ model: "core-error", messages: user("x") });
    assert.equal(res.status, 500);
    assert.equal((await res.json()).error.message, "core exploded");
  });
});

describe("sessions in D1", () => {
  const rows = (tenant, id) =>
    w.db.prepare("SELECT seq, role, message, tokens FROM messages WHERE tenant = ? AND session_id = ? ORDER BY seq")
      .bind(tenant, id).all().then((r) => r.results);

  test("history is stored, read back from D1 and prepended on the next turn (JSON then stream)", async () => {
    const sid = "sess-ada";
    let res = await chat({ model: "core-model", messages: user("My name is Ada.") }, { headers: { "x-session-id": sid } });
    assert.equal(res.status, 200);
    await res.text();
    const first = await eventually(async () => ((await rows("acme", sid)).length === 2 ? rows("acme", sid) : null));
    assert.ok(first, "two rows appended");
    assert.deepEqual(first.map((r) => r.role), ["user", "assistant"]);
    assert.equal(JSON.parse(first[0].message).content, "My name is Ada.");
    assert.equal(JSON.parse(first[1].message).content, "core[1] core-model: My name is Ada.");
    assert.equal(first[1].tokens, 5, "assistant tokens from upstream usage");
    assert.ok(first[0].tokens > 0);

    // second turn, streamed: the core sees history + new turn; the stream is teed into D1
    res = await chat({ model: "core-model", stream: true,
      messages: [{ role: "system", content: "be brief" }, ...user("What is my name?")] }, { headers: { "x-session-id": sid } });
    const text = await res.text();
    const sent = origin.requests.at(-1).body.messages.map((m) => m.content);
    assert.deepEqual(sent, ["be brief", "My name is Ada.", "core[1] core-model: My name is Ada.", "What is my name?"]);
    assert.equal(sseContent(text), "core[4] core-model: What is my name?");
    const all = await eventually(async () => ((await rows("acme", sid)).length === 4 ? rows("acme", sid) : null));
    assert.ok(all, "streamed turn appended");
    assert.deepEqual(all.map((r) => r.seq), [1, 2, 3, 4]);
    assert.equal(JSON.parse(all[3].message).content, "core[4] core-model: What is my name?");
    const s = await w.db.prepare("SELECT prompt_tokens, completion_tokens, message_count FROM sessions WHERE tenant='acme' AND id=?").bind(sid).first();
    assert.deepEqual(s, { prompt_tokens: 22, completion_tokens: 10, message_count: 4 });

    // through Workers AI too: the mock echoes how many messages it got
    res = await chat({ model: "llama-3.1-8b", messages: user("and again?") }, { headers: { "x-session-id": sid } });
    assert.match((await res.json()).choices[0].message.content, /^echo\[5\]/);
  });

  test("GET returns the history, DELETE erases it; both tenant-scoped", async () => {
    const sid = "sess-get";
    await (await chat({ model: "core-model", messages: user("remember me") }, { headers: { "x-session-id": sid } })).text();
    await eventually(async () => (await rows("acme", sid)).length === 2);
    let res = await call(`/v1/sessions/${sid}`);
    assert.equal(res.status, 200);
    const j = await res.json();
    assert.equal(j.id, sid);
    assert.deepEqual(j.messages.map((m) => m.role), ["user", "assistant"]);
    assert.ok(j.messages.every((m) => typeof m.tokens === "number"));
    // another tenant sees nothing and cannot delete
    await expectError(await call(`/v1/sessions/${sid}`, { key: KEYS.beta }), 404, "invalid_request_error");
    await expectError(await call(`/v1/sessions/${sid}`, { key: KEYS.beta, method: "DELETE" }), 404, "invalid_request_error");
    // beta using the same session id gets a fresh conversation
    res = await chat({ model: "core-model", messages: user("who?") }, { key: KEYS.beta, headers: { "x-session-id": sid } });
    assert.match((await res.json()).choices[0].message.content, /^core\[1\]/);
    res = await call(`/v1/sessions/${sid}`, { method: "DELETE" });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).deleted, true);
    assert.equal((await rows("acme", sid)).length, 0);
    await expectError(await call(`/v1/sessions/${sid}`), 404, "invalid_request_error");
    await expectError(await chat({ model: "m", messages: user("x") }, { headers: { "x-session-id": "bad id!" } }), 400, "invalid_request_error");
  });

  test("the cron trigger prunes expired sessions only", async () => {
    const t = now();
    for (const [id, exp] of [["old", t - 10], ["fresh", t + 1000]]) {
      await w.db.prepare("INSERT INTO sessions (tenant, id, created_at, updated_at, expires_at) VALUES ('acme', ?, ?, ?, ?)").bind(id, t - 5000, t - 5000, exp).run();
      await w.db.prepare("INSERT INTO messages (tenant, session_id, seq, role, message, created_at) VALUES ('acme', ?, 1, 'user', '{}', ?)").bind(id, t).run();
    }
    const worker = await w.mf.getWorker("edge");
    await worker.scheduled({ cron: "17 * * * *" });
    const left = await w.db.prepare("SELECT id FROM sessions WHERE id IN ('old','fresh')").all();
    assert.deepEqual(left.results.map((r) => r.id), ["fresh"]);
    assert.equal((await rows("acme", "old")).length, 0);
    assert.equal((await rows("acme", "fresh")).length, 1);
  });
});

describe("edge cache", () => {
  const body = { model: "core-model", temperature: 0, messages: user("cache me") };
  const coreCalls = () => origin.requests.filter((r) => r.body.messages?.at(-1)?.content === "cache me").length;

  test("miss then hit (JSON and SSE replay), stored in KV, tenants isolated", async () => {
    let res = await chat(body);
    assert.equal(res.headers.get("x-datamind-cache"), "miss");
    const miss = await res.json();
    assert.equal(coreCalls(), 1);
    const kvKeys = await eventually(async () => {
      const l = await w.cacheKv.list({ prefix: "cache:v1:" });
      return l.keys.length ? l.keys : null;
    });
    assert.ok(kvKeys, "answer written to KV");

    res = await chat({ ...body, messages: [{ content: "cache me", role: "user" }] }); // same canonical request
    assert.equal(res.headers.get("x-datamind-cache"), "hit");
    assert.ok(["colo", "global"].includes(res.headers.get("x-datamind-cache-tier")));
    const hit = await res.json();
    assert.equal(hit.choices[0].message.content, miss.choices[0].message.content);
    assert.equal(coreCalls(), 1, "hit served at the edge");

    res = await chat({ ...body, stream: true });
    assert.equal(res.headers.get("x-datamind-cache"), "hit");
    assert.match(res.headers.get("content-type"), /text\/event-stream/);
    const text = await res.text();
    assert.equal(sseContent(text), miss.choices[0].message.content);
    assert.equal(sseData(text).at(-1), "[DONE]");

    res = await chat(body, { key: KEYS.beta });
    assert.equal(res.headers.get("x-datamind-cache"), "miss", "another tenant never sees acme's entry");
    await res.text();
    assert.equal(coreCalls(), 2);
  });

  test("a location without the entry is served from KV (global tier) and refilled", async () => {
    const b = { model: "core-model", temperature: 0, messages: user("global tier") };
    await (await chat(b)).text();
    const calls = origin.requests.length;
    const keys = await eventually(async () => (await w.cacheKv.list({ prefix: "cache:v1:" })).keys.map((k) => k.name));
    const caches = await w.mf.getCaches();
    // Drop every Cache API entry, as if the next request landed in another location.
    for (const k of keys) await caches.default.delete(`https://edge-cache.datamind.internal/v1/chat/${k.slice("cache:v1:".length)}`);
    let res = await chat(b);
    assert.equal(res.headers.get("x-datamind-cache"), "hit");
    assert.equal(res.headers.get("x-datamind-cache-tier"), "global");
    await res.text();
    res = await chat(b);
    assert.equal(res.headers.get("x-datamind-cache-tier"), "colo", "KV hit refilled the Cache API");
    await res.text();
    assert.equal(origin.requests.length, calls);
  });

  test("streamed answers fill the cache too; opt-out and non-deterministic requests bypass it", async () => {
    const b = { model: "core-model", temperature: 0, messages: user("stream then cache"), stream: true };
    let res = await chat(b);
    assert.equal(res.headers.get("x-datamind-cache"), "miss");
    const first = sseContent(await res.text());
    const hit = await eventually(async () => {
      const r = await chat({ ...b, stream: false });
      return r.headers.get("x-datamind-cache") === "hit" ? r.json() : (await r.text(), null);
    });
    assert.ok(hit, "streamed answer was cached");
    assert.equal(hit.choices[0].message.content, first);
    res = await chat(b, { headers: { "x-datamind-cache": "off" } });
    assert.equal(res.headers.get("x-datamind-cache"), null);
    await res.text();
    res = await chat({ ...b, temperature: 0.9 });
    assert.equal(res.headers.get("x-datamind-cache"), null);
    await res.text();
  });

  test("errors are never cached", async () => {
    const b = { model: "core-error", temperature: 0, messages: user("boom") };
    const before = origin.requests.length;
    for (let i = 0; i < 2; i++) {
      const res = await chat(b);
      assert.equal(res.status, 500);
      assert.equal(res.headers.get("x-datamind-cache"), "miss");
      await res.text();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(origin.requests.length - before, 2);
  });
});
