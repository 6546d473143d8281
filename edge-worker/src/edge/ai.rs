//! Workers AI through the `AI` binding, called duck-typed (`env.AI.run(model, input)`) so the
//! real binding, a miniflare wrapped binding and a `wrangler dev` RPC service all work
//! (`Env::ai` insists on the constructor being named `Ai`).

use serde::Serialize;
use serde_json::Value;
use worker::js_sys::{Array, Function, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{ByteStream, Env, Response, ResponseBody, console_error};

use crate::EdgeError;

async fn run(env: &Env, model: &str, input: &Value) -> Result<JsValue, EdgeError> {
    let fail = |what: &str, e: JsValue| {
        console_error!("workers ai {what}: {e:?}");
        EdgeError::Upstream("workers_ai")
    };
    let ai = Reflect::get(env, &"AI".into()).map_err(|e| fail("binding", e))?;
    if ai.is_undefined() {
        return Err(EdgeError::NotConfigured("workers_ai"));
    }
    let run: Function = Reflect::get(&ai, &"run".into())
        .map_err(|e| fail("binding", e))?
        .dyn_into()
        .map_err(|e| fail("binding.run", e))?;
    // Maps must become plain objects, or the binding sees `input.messages` as undefined.
    let input = input
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| fail("input", e.into()))?;
    // Reflect.apply, not `run.call2`: on an RPC stub `.call` is itself a remote property.
    let pending = Reflect::apply(&run, &ai, &Array::of2(&model.into(), &input))
        .map_err(|e| fail("run", e))?;
    // RPC returns a thenable, not a Promise instance.
    JsFuture::from(Promise::resolve(&pending))
        .await
        .map_err(|e| fail("run", e))
}

/// A non-streamed answer, as JSON.
pub async fn run_json(env: &Env, model: &str, input: &Value) -> Result<Value, EdgeError> {
    let out = run(env, model, input).await?;
    serde_wasm_bindgen::from_value(out).map_err(|e| {
        console_error!("workers ai output: {e}");
        EdgeError::Upstream("workers_ai")
    })
}

/// A streamed answer: the binding's SSE bytes.
pub async fn run_stream(env: &Env, model: &str, input: &Value) -> Result<ByteStream, EdgeError> {
    let out = run(env, model, input).await?;
    let Ok(stream) = out.dyn_into::<worker::web_sys::ReadableStream>() else {
        console_error!("workers ai: stream requested but the binding returned no ReadableStream");
        return Err(EdgeError::Upstream("workers_ai"));
    };
    Response::from_body(ResponseBody::Stream(stream))
        .and_then(|mut r| r.stream())
        .map_err(|e| {
            console_error!("workers ai stream: {e}");
            EdgeError::Upstream("workers_ai")
        })
}
