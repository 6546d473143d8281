//! Workers AI's native `run` route: `{"result":{…},"success":true,"errors":[],"messages":[]}`,
//! its SSE stream (`data: {"response":"tok"}` … `data: [DONE]`), and embedding models
//! (`{"text": …}` → `result.shape` / `result.data`).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Answer, Ctx};
use super::body::{CONTENT, CONTENT_TOKENS};
use super::embeddings::vector;
use super::sse::PieceWriter;

#[derive(Debug, Deserialize)]
struct RunRequest {
    #[serde(default)]
    messages: Option<Value>,
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
}

fn envelope(result: Value) -> Bytes {
    let v = json!({"result": result, "success": true, "errors": [], "messages": []});
    Bytes::from(v.to_string())
}

/// The answer to a `run` request body.
pub fn answer(body: &[u8], ctx: &Ctx) -> Result<Answer, String> {
    let req: RunRequest =
        serde_json::from_slice(body).map_err(|e| format!("AiError: Bad input: {e}"))?;
    if req.messages.is_none() && req.prompt.is_none() {
        let texts: Vec<String> = match req.text {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| t.as_str().unwrap_or_default().to_owned())
                .collect(),
            _ => {
                return Err("AiError: Bad input: must have required property 'messages'".to_owned());
            }
        };
        let data: Vec<Value> = texts.iter().map(|t| json!(vector(t).to_vec())).collect();
        let dims = data.first().and_then(Value::as_array).map_or(0, Vec::len);
        return Ok(Answer::Full(envelope(
            json!({"shape": [data.len(), dims], "data": data, "pooling": "mean"}),
        )));
    }
    let tool = req.tools.and_then(|t| t.into_iter().next()).map(|t| {
        let f = t.get("function").unwrap_or(&t);
        f.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    });
    let p = ctx.prompt_tokens;
    let usage = |n: u64| json!({"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n});
    let calls = |name: &str| json!([{"name": name, "arguments": {"location": "Paris"}}]);
    if !req.stream.unwrap_or(false) {
        let result = match &tool {
            Some(name) => json!({"response": null, "tool_calls": calls(name),
                                 "usage": usage(CONTENT_TOKENS)}),
            None => json!({"response": CONTENT, "usage": usage(CONTENT_TOKENS)}),
        };
        return Ok(Answer::Full(envelope(result)));
    }
    let mut w = PieceWriter::default();
    let n = match &tool {
        Some(name) => {
            let ev = json!({"response": "", "tool_calls": calls(name)});
            w.sse(None, ev.to_string().as_bytes());
            1
        }
        None => {
            let n = ctx.chunks.max(1);
            for i in 1..=n {
                let ev = json!({ "response": format!("tok{i} ") });
                w.sse(None, ev.to_string().as_bytes());
                if i < n {
                    w.cut();
                }
            }
            n as usize
        }
    };
    let ev = json!({"response": "", "usage": usage(n as u64)});
    w.sse(None, ev.to_string().as_bytes());
    w.sse(None, b"[DONE]");
    Ok(Answer::sse(w.finish(), n / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::api::tests::{ctx, events};

    fn full(a: Answer) -> Value {
        let Answer::Full(b) = a else {
            panic!("not full")
        };
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn run_text_tools_embeddings() {
        let v = full(answer(br#"{"messages":[]}"#, &ctx(2)).unwrap());
        assert_eq!(v["result"]["response"], CONTENT);
        assert_eq!(v["success"], true);
        assert_eq!(v["errors"], json!([]));
        let body =
            br#"{"messages":[],"tools":[{"type":"function","function":{"name":"getWeather"}}]}"#;
        let v = full(answer(body, &ctx(2)).unwrap());
        assert_eq!(v["result"]["tool_calls"][0]["name"], "getWeather");
        assert!(v["result"]["response"].is_null());
        let v = full(answer(br#"{"text":["a","b"]}"#, &ctx(2)).unwrap());
        assert_eq!(v["result"]["shape"], json!([2, 8]));
        assert!(answer(br#"{}"#, &ctx(2)).is_err());
    }

    #[test]
    fn run_stream() {
        let a = answer(br#"{"prompt":"x","stream":true}"#, &ctx(3)).unwrap();
        let (_, datas, pieces) = events(&a);
        assert_eq!(pieces, 3);
        assert_eq!(datas[0], json!({"response": "tok1 "}));
        assert_eq!(datas[3]["usage"]["completion_tokens"], 3);
        assert_eq!(datas[4], "[DONE]");
    }
}
