// `wrangler dev` service that stands in for the AI binding (see ../wrangler.toml [env.local]).
import { WorkerEntrypoint } from "cloudflare:workers";
import { Ai } from "./ai.js";

export class AiMock extends WorkerEntrypoint {
  run(model, input) {
    return new Ai().run(model, input);
  }
}

export default { fetch: () => new Response("mock-ai: use the AiMock entrypoint", { status: 404 }) };
