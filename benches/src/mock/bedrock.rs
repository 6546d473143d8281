//! Bedrock runtime: `converse`, `converse-stream` (binary AWS event-stream frames) and
//! `invoke` for the embedding models (Titan `inputText`, Cohere `texts`).

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as FrameValue, Message};
use bytes::Bytes;
use http::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Answer, BedrockAction, Ctx, TOOL_ARGS, split_args};
use super::body::{CONTENT, CONTENT_TOKENS};
use super::embeddings::vector;
use super::sse::PieceWriter;

/// `Content-Type` of `converse-stream` answers.
pub const EVENTSTREAM: HeaderValue = HeaderValue::from_static("application/vnd.amazon.eventstream");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseRequest {
    #[serde(default)]
    tool_config: Option<ToolConfig>,
}

#[derive(Debug, Deserialize)]
struct ToolConfig {
    #[serde(default)]
    tools: Vec<Tool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tool {
    #[serde(default)]
    tool_spec: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<String>,
}

/// One event-stream message: `:event-type`, `:content-type: application/json`,
/// `:message-type: event`, JSON payload; prelude and CRCs by `aws-smithy-eventstream`.
pub fn frame(event_type: &'static str, payload: &Value) -> Vec<u8> {
    let message = Message::new(Bytes::from(payload.to_string()))
        .add_header(Header::new(
            ":event-type",
            FrameValue::String(event_type.into()),
        ))
        .add_header(Header::new(
            ":content-type",
            FrameValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            FrameValue::String("event".into()),
        ));
    let mut out = Vec::with_capacity(160 + payload.to_string().len());
    // Writing to a Vec fails only for oversized headers or payloads, which these are not.
    let _ = write_message_to(&message, &mut out);
    out
}

/// The answer to a Bedrock request body.
pub fn answer(action: BedrockAction, body: &[u8], ctx: &Ctx) -> Result<Answer, String> {
    let p = ctx.prompt_tokens;
    if action == BedrockAction::Invoke {
        return invoke(body, ctx);
    }
    let req: ConverseRequest =
        serde_json::from_slice(body).map_err(|e| format!("Malformed input request: {e}"))?;
    let tool = req
        .tool_config
        .and_then(|c| c.tools.into_iter().find_map(|t| t.tool_spec))
        .map(|s| s.name.unwrap_or_default());
    let stop = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    if action == BedrockAction::Converse {
        let content = match &tool {
            Some(name) => json!([{"toolUse": {"toolUseId": "tooluse_mock1", "name": name,
                                               "input": {"location": "Paris"}}}]),
            None => json!([{ "text": CONTENT }]),
        };
        let n = CONTENT_TOKENS;
        let v = json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": p, "outputTokens": n, "totalTokens": p + n},
            "metrics": {"latencyMs": 1},
        });
        return Ok(Answer::Full(Bytes::from(v.to_string())));
    }

    let mut w = PieceWriter::default();
    w.push(&frame("messageStart", &json!({"role": "assistant"})));
    let deltas: Vec<Value> = match &tool {
        Some(name) => {
            w.push(&frame(
                "contentBlockStart",
                &json!({"contentBlockIndex": 0, "start": {"toolUse": {
                    "toolUseId": "tooluse_mock1", "name": name}}}),
            ));
            split_args(TOOL_ARGS, ctx.chunks.min(4))
                .into_iter()
                .map(|piece| json!({"toolUse": {"input": piece}}))
                .collect()
        }
        None => (1..=ctx.chunks.max(1))
            .map(|i| json!({ "text": format!("tok{i} ") }))
            .collect(),
    };
    let n = deltas.len();
    for (i, delta) in deltas.into_iter().enumerate() {
        w.push(&frame(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": delta}),
        ));
        if i + 1 < n {
            w.cut();
        }
    }
    let out = n as u64;
    w.push(&frame("contentBlockStop", &json!({"contentBlockIndex": 0})));
    w.push(&frame("messageStop", &json!({ "stopReason": stop })));
    w.push(&frame(
        "metadata",
        &json!({"usage": {"inputTokens": p, "outputTokens": out, "totalTokens": p + out},
                "metrics": {"latencyMs": 1}}),
    ));
    Ok(Answer::Stream {
        pieces: w.finish(),
        break_after: n / 2,
        content_type: EVENTSTREAM,
    })
}

fn invoke(body: &[u8], ctx: &Ctx) -> Result<Answer, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("Malformed input request: {e}"))?;
    let out = if let Some(text) = v.get("inputText").and_then(Value::as_str) {
        json!({"embedding": vector(text).to_vec(), "inputTextTokenCount": ctx.prompt_tokens})
    } else if let Some(texts) = v.get("texts").and_then(Value::as_array) {
        let vectors: Vec<Value> = texts
            .iter()
            .map(|t| json!(vector(t.as_str().unwrap_or_default()).to_vec()))
            .collect();
        json!({"id": format!("mock-{}", ctx.seq), "embeddings": vectors, "texts": texts,
               "response_type": "embeddings_floats"})
    } else {
        return Err(
            "mock-llm: invoke answers embedding bodies only (Titan `inputText`, Cohere `texts`)"
                .to_owned(),
        );
    };
    Ok(Answer::Full(Bytes::from(out.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::api::tests::ctx;

    /// A minimal independent decoder: (event type, payload) per frame, CRCs checked.
    fn decode(mut b: &[u8]) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let total = u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize;
            let headers_len = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
            assert_eq!(
                crc32(&b[0..8]),
                u32::from_be_bytes(b[8..12].try_into().unwrap())
            );
            assert_eq!(
                crc32(&b[..total - 4]),
                u32::from_be_bytes(b[total - 4..total].try_into().unwrap())
            );
            let mut h = &b[12..12 + headers_len];
            let mut event = String::new();
            while !h.is_empty() {
                let name_len = h[0] as usize;
                let name = std::str::from_utf8(&h[1..1 + name_len]).unwrap().to_owned();
                assert_eq!(h[1 + name_len], 7, "string header");
                let vlen = u16::from_be_bytes([h[2 + name_len], h[3 + name_len]]) as usize;
                let value = std::str::from_utf8(&h[4 + name_len..4 + name_len + vlen]).unwrap();
                if name == ":event-type" {
                    event = value.to_owned();
                }
                h = &h[4 + name_len + vlen..];
            }
            let payload = &b[12 + headers_len..total - 4];
            out.push((event, serde_json::from_slice(payload).unwrap()));
            b = &b[total..];
        }
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn converse_text_and_tool() {
        let Answer::Full(b) =
            answer(BedrockAction::Converse, br#"{"messages":[]}"#, &ctx(2)).unwrap()
        else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["output"]["message"]["content"][0]["text"], CONTENT);
        assert_eq!(v["stopReason"], "end_turn");
        assert_eq!(v["usage"]["totalTokens"], 12);
        let body = br#"{"toolConfig":{"tools":[{"toolSpec":{"name":"top_song"}}]}}"#;
        let Answer::Full(b) = answer(BedrockAction::Converse, body, &ctx(2)).unwrap() else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["stopReason"], "tool_use");
        assert_eq!(
            v["output"]["message"]["content"][0]["toolUse"]["name"],
            "top_song"
        );
    }

    #[test]
    fn converse_stream_frames() {
        let Answer::Stream {
            pieces,
            break_after,
            ..
        } = answer(BedrockAction::ConverseStream, b"{}", &ctx(3)).unwrap()
        else {
            panic!()
        };
        assert_eq!((pieces.len(), break_after), (3, 1));
        let frames = decode(&pieces.bytes);
        let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        assert_eq!(frames[1].1["delta"]["text"], "tok1 ");
        assert_eq!(frames[5].1["stopReason"], "end_turn");
        assert_eq!(frames[6].1["usage"]["outputTokens"], 3);

        let body = br#"{"toolConfig":{"tools":[{"toolSpec":{"name":"t"}}]}}"#;
        let Answer::Stream { pieces, .. } =
            answer(BedrockAction::ConverseStream, body, &ctx(20)).unwrap()
        else {
            panic!()
        };
        let frames = decode(&pieces.bytes);
        assert_eq!(frames[1].0, "contentBlockStart");
        let args: String = frames
            .iter()
            .filter_map(|(_, v)| v.pointer("/delta/toolUse/input").and_then(Value::as_str))
            .collect();
        assert_eq!(args, TOOL_ARGS);
    }

    #[test]
    fn invoke_embeddings() {
        let Answer::Full(b) =
            answer(BedrockAction::Invoke, br#"{"inputText":"hi"}"#, &ctx(1)).unwrap()
        else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["embedding"], json!(vector("hi").to_vec()));
        let Answer::Full(b) =
            answer(BedrockAction::Invoke, br#"{"texts":["a","b"]}"#, &ctx(1)).unwrap()
        else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
        assert!(answer(BedrockAction::Invoke, br#"{"prompt":"x"}"#, &ctx(1)).is_err());
    }
}
