// A stand-in for the Workers AI binding (`env.AI.run(model, input)`), used by the node
// tests (as a miniflare wrapped binding, whose class must be named `Ai`) and by
// `wrangler dev --env local` (through the RPC entrypoint in index.js).
//
// Answers echo what they received so tests can see the prompt the edge built:
//   "echo[<number of messages>] <model>: <last message content>"
// Models `@cf/test/fail` and `@cf/test/fail-stream` fail before the first byte.
export class Ai {
  async run(model, input) {
    if (model === "@cf/test/fail") throw new Error("mock AI: model overloaded");
    const messages = input.messages ?? [];
    const last = messages.length ? messages[messages.length - 1].content : "";
    const text = `echo[${messages.length}] ${model}: ${last}`;
    const usage = { prompt_tokens: 7 * messages.length, completion_tokens: text.split(" ").length, total_tokens: 0 };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    if (!input.stream) return { response: text, usage };
    const enc = new TextEncoder();
    if (model === "@cf/test/fail-stream") {
      return new ReadableStream({ pull(c) { c.error(new Error("mock AI: stream failed")); } });
    }
    const words = text.split(/(?<= )/);
    const events = words.map((w) => `data: ${JSON.stringify({ response: w, p: "abc" })}\n\n`);
    events.push(`data: ${JSON.stringify({ response: "", usage })}\n\n`, "data: [DONE]\n\n");
    let i = 0;
    return new ReadableStream({
      async pull(c) {
        if (i < events.length) {
          await new Promise((r) => setTimeout(r, 5));
          c.enqueue(enc.encode(events[i++]));
        } else c.close();
      },
    });
  }
}
