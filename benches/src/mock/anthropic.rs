//! Anthropic Messages (`POST /v1/messages`): the `message` body, `tool_use` when tools are
//! offered, and the event stream `message_start` … `message_stop`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Answer, Ctx, TOOL_ARGS, split_args};
use super::body::{CONTENT, CONTENT_TOKENS};
use super::sse::PieceWriter;

/// What the mock reads from a Messages request.
#[derive(Debug, Deserialize)]
struct MessagesRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    tools: Option<Vec<Named>>,
    #[serde(default)]
    tool_choice: Option<Choice>,
}

#[derive(Debug, Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type":…,"message":…}}`.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(status), "message": message}})
}

/// The answer to a Messages request body.
pub fn answer(body: &[u8], ctx: &Ctx) -> Result<Answer, String> {
    let req: MessagesRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let model = req.model.unwrap_or_else(|| "mock".to_owned());
    let tool = match req.tool_choice.and_then(|c| c.kind).as_deref() {
        Some("none") => None,
        _ => req
            .tools
            .and_then(|t| t.into_iter().next())
            .map(|t| t.name.unwrap_or_default()),
    };
    let id = format!("msg_mock{}", ctx.seq);
    let input = ctx.prompt_tokens;
    if !req.stream.unwrap_or(false) {
        let (content, stop) = match &tool {
            Some(name) => (
                json!([{"type": "tool_use", "id": "toolu_mock1", "name": name,
                        "input": {"location": "Paris"}}]),
                "tool_use",
            ),
            None => (json!([{"type": "text", "text": CONTENT}]), "end_turn"),
        };
        let v = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": CONTENT_TOKENS},
        });
        return Ok(Answer::Full(Bytes::from(v.to_string())));
    }

    let mut w = PieceWriter::default();
    let event =
        |w: &mut PieceWriter, name: &str, v: Value| w.sse(Some(name), v.to_string().as_bytes());
    event(
        &mut w,
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 1}}}),
    );
    let (block, deltas, stop): (Value, Vec<Value>, &str) = match &tool {
        Some(name) => {
            let pieces = split_args(TOOL_ARGS, ctx.chunks.min(4));
            (
                json!({"type": "tool_use", "id": "toolu_mock1", "name": name, "input": {}}),
                pieces
                    .iter()
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
                "tool_use",
            )
        }
        None => (
            json!({"type": "text", "text": ""}),
            (1..=ctx.chunks.max(1))
                .map(|i| json!({"type": "text_delta", "text": format!("tok{i} ")}))
                .collect(),
            "end_turn",
        ),
    };
    event(
        &mut w,
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
    );
    w.sse(Some("ping"), br#"{"type": "ping"}"#);
    if tool.is_some() {
        event(
            &mut w,
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "input_json_delta", "partial_json": ""}}),
        );
    }
    let n = deltas.len();
    for (i, delta) in deltas.into_iter().enumerate() {
        event(
            &mut w,
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        );
        if i + 1 < n {
            w.cut();
        }
    }
    event(
        &mut w,
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    event(
        &mut w,
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": n}}),
    );
    event(&mut w, "message_stop", json!({"type": "message_stop"}));
    Ok(Answer::sse(w.finish(), n / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::api::tests::{ctx, events};

    #[test]
    fn text_message_and_tool_use() {
        let body = br#"{"model":"claude-x","max_tokens":9,"messages":[]}"#;
        let Answer::Full(b) = answer(body, &ctx(3)).unwrap() else {
            panic!("not full")
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["id"], "msg_mock1");
        assert_eq!(v["content"], json!([{"type": "text", "text": CONTENT}]));
        assert_eq!(v["stop_reason"], "end_turn");
        assert_eq!(v["usage"]["input_tokens"], 7);
        assert_eq!(v["usage"]["output_tokens"], 5);

        let body =
            br#"{"model":"m","tools":[{"name":"get_weather","input_schema":{}},{"name":"b"}]}"#;
        let Answer::Full(b) = answer(body, &ctx(3)).unwrap() else {
            panic!("not full")
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(
            v["content"][0],
            json!({"type": "tool_use", "id": "toolu_mock1", "name": "get_weather",
                   "input": {"location": "Paris"}})
        );
        let body = br#"{"tools":[{"name":"a"}],"tool_choice":{"type":"none"}}"#;
        let Answer::Full(b) = answer(body, &ctx(3)).unwrap() else {
            panic!("not full")
        };
        assert!(String::from_utf8_lossy(&b).contains("end_turn"));
    }

    #[test]
    fn stream_event_sequence() {
        let a = answer(br#"{"model":"m","stream":true}"#, &ctx(3)).unwrap();
        let (names, datas, pieces) = events(&a);
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(pieces, 3, "one piece per text delta");
        assert_eq!(datas[3]["delta"]["text"], "tok1 ");
        assert_eq!(datas[7]["delta"]["stop_reason"], "end_turn");
        assert_eq!(datas[7]["usage"]["output_tokens"], 3);
        assert_eq!(datas[0]["message"]["model"], "m");

        let a = answer(br#"{"stream":true,"tools":[{"name":"t"}]}"#, &ctx(20)).unwrap();
        let (names, datas, _) = events(&a);
        assert_eq!(datas[1]["content_block"]["type"], "tool_use");
        let json: String = datas
            .iter()
            .filter(|d| d["delta"]["type"] == "input_json_delta")
            .map(|d| d["delta"]["partial_json"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(json, TOOL_ARGS);
        assert_eq!(
            names.iter().filter(|n| *n == "content_block_delta").count(),
            5
        );
        assert_eq!(datas[datas.len() - 2]["delta"]["stop_reason"], "tool_use");
    }
}
