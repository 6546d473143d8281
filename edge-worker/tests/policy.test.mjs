// The Conductor policy at the edge, under workerd (miniflare): the same rule schema and
// engine as the core gateway (datamind_llm::policy) choose among Workers AI, the core
// gateway and a cloud API.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KEYS, POLICY_ROUTES, startOrigin, startWorker } from "./harness.mjs";

let origin, w;
before(async () => {
  origin = await startOrigin();
  w = await startWorker(origin.url, POLICY_ROUTES);
});
after(async () => {
  await w?.mf.dispose();
  origin?.server.close();
});

function chat(body, headers = {}, key = KEYS.acme) {
  return w.mf.dispatchFetch(new URL("/v1/chat/completions", w.url), {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}
const user = (content) => [{ role: "user", content }];

describe("conductor policy at the edge", () => {
  test("small model: Workers AI at the edge (rule small-at-edge)", async () => {
    const res = await chat({ model: "chat-small", messages: user("hello") });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "workers_ai");
    assert.equal(res.headers.get("x-datamind-rule"), "small-at-edge");
    const j = await res.json();
    assert.equal(j.choices[0].message.content, "echo[1] @cf/meta/llama-3.1-8b-instruct: hello");
  });

  test("other models: the core gateway first (rule core-first)", async () => {
    const res = await chat({ model: "chat-large", messages: user("hi") });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "core");
    assert.equal(res.headers.get("x-datamind-rule"), "core-first");
    await res.arrayBuffer();
  });

  test("cost-tagged: the cheapest destination serving the model (cloud)", async () => {
    const res = await chat({ model: "chat-large", messages: user("hi") }, { "x-datamind-tags": "cost" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "cloud");
    assert.equal(res.headers.get("x-datamind-rule"), "cheapest-fast");
    await res.arrayBuffer();
  });

  test("an EU-resident tenant stays in the EU, even for a small model (rule eu-residency)", async () => {
    const res = await chat({ model: "chat-small", messages: user("hi") }, {}, KEYS.beta);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-datamind-route"), "cloud");
    assert.equal(res.headers.get("x-datamind-rule"), "eu-residency");
    await res.arrayBuffer();
  });

  test("a denying rule answers its status with policy_denied", async () => {
    const res = await chat({ model: "chat-small", messages: user("hi"), max_tokens: 65536 });
    assert.equal(res.status, 400);
    const j = await res.json();
    assert.equal(j.error.code, "policy_denied");
    assert.match(j.error.message, /oversized-output/);
  });
});
