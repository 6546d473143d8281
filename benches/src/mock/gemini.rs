//! Gemini API and Vertex AI: `generateContent`, `streamGenerateContent` (SSE with `?alt=sse`,
//! otherwise a streamed JSON array), `embedContent`, `batchEmbedContents`.

use bytes::Bytes;
use http::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Answer, Ctx, GeminiMethod};
use super::body::{CONTENT, CONTENT_TOKENS};
use super::embeddings::vector;
use super::sse::PieceWriter;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest {
    #[serde(default)]
    tools: Option<Vec<Tool>>,
    #[serde(default)]
    tool_config: Option<ToolConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tool {
    #[serde(default)]
    function_declarations: Option<Vec<Named>>,
}

#[derive(Debug, Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    #[serde(default)]
    function_calling_config: Option<CallingConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallingConfig {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    allowed_function_names: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct EmbedRequest {
    content: EmbedContent,
}

#[derive(Debug, Deserialize)]
struct EmbedContent {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchEmbedRequest {
    requests: Vec<EmbedRequest>,
}

fn embedding(content: &EmbedContent) -> Value {
    let text: String = content
        .parts
        .iter()
        .filter_map(|p| p.text.as_deref())
        .collect();
    json!({ "values": vector(&text).to_vec() })
}

/// The function the mock calls: the first declared one (or the first allowed one), unless the
/// calling mode is `NONE`.
fn tool_name(req: GenerateRequest) -> Option<String> {
    let config = req.tool_config.and_then(|c| c.function_calling_config);
    if let Some(cfg) = &config {
        if cfg.mode.as_deref() == Some("NONE") {
            return None;
        }
        if let Some(name) = cfg.allowed_function_names.as_ref().and_then(|n| n.first()) {
            return Some(name.clone());
        }
    }
    req.tools?
        .into_iter()
        .filter_map(|t| t.function_declarations)
        .flatten()
        .next()
        .map(|d| d.name.unwrap_or_default())
}

/// The answer to a Gemini request body. `sse`: the query has `alt=sse`.
pub fn answer(
    method: GeminiMethod,
    model: &str,
    sse: bool,
    body: &[u8],
    ctx: &Ctx,
) -> Result<Answer, String> {
    let invalid = |e: serde_json::Error| format!("Invalid JSON payload received. {e}");
    match method {
        GeminiMethod::Embed => {
            let req: EmbedRequest = serde_json::from_slice(body).map_err(invalid)?;
            let v = json!({ "embedding": embedding(&req.content) });
            return Ok(Answer::Full(Bytes::from(v.to_string())));
        }
        GeminiMethod::BatchEmbed => {
            let req: BatchEmbedRequest = serde_json::from_slice(body).map_err(invalid)?;
            let all: Vec<Value> = req.requests.iter().map(|r| embedding(&r.content)).collect();
            let v = json!({ "embeddings": all });
            return Ok(Answer::Full(Bytes::from(v.to_string())));
        }
        GeminiMethod::Generate | GeminiMethod::Stream => {}
    }
    let req: GenerateRequest = serde_json::from_slice(body).map_err(invalid)?;
    let tool = tool_name(req);
    let p = ctx.prompt_tokens;
    let response_id = format!("mock-{}", ctx.seq);
    let chunk = |part: Value, last: Option<u64>| {
        let mut candidate = json!({"content": {"parts": [part], "role": "model"}, "index": 0});
        let usage = match last {
            Some(n) => {
                candidate["finishReason"] = json!("STOP");
                json!({"promptTokenCount": p, "candidatesTokenCount": n, "totalTokenCount": p + n})
            }
            None => json!({"promptTokenCount": p, "totalTokenCount": p}),
        };
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
               "responseId": response_id})
    };
    let call = |name: &str| json!({"functionCall": {"name": name, "args": {"location": "Paris"}}});
    if method == GeminiMethod::Generate {
        let part = match &tool {
            Some(name) => call(name),
            None => json!({ "text": CONTENT }),
        };
        let v = chunk(part, Some(CONTENT_TOKENS));
        return Ok(Answer::Full(Bytes::from(v.to_string())));
    }
    let chunks: Vec<Value> = match &tool {
        Some(name) => vec![chunk(call(name), Some(CONTENT_TOKENS))],
        None => {
            let n = ctx.chunks.max(1);
            (1..=n)
                .map(|i| {
                    let last = (i == n).then_some(u64::from(n));
                    chunk(json!({ "text": format!("tok{i} ") }), last)
                })
                .collect()
        }
    };
    let count = chunks.len();
    let mut w = PieceWriter::default();
    for (i, c) in chunks.iter().enumerate() {
        let data = c.to_string();
        if sse {
            w.sse(None, data.as_bytes());
        } else {
            w.push(if i == 0 { b"[" } else { b",\r\n" });
            w.push(data.as_bytes());
            if i + 1 == count {
                w.push(b"]");
            }
        }
        w.cut();
    }
    let pieces = w.finish();
    Ok(if sse {
        Answer::sse(pieces, count / 2)
    } else {
        Answer::Stream {
            pieces,
            break_after: count / 2,
            content_type: HeaderValue::from_static("application/json; charset=UTF-8"),
        }
    })
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
    fn generate_text_and_function_call() {
        let v = full(
            answer(
                GeminiMethod::Generate,
                "g",
                false,
                br#"{"contents":[]}"#,
                &ctx(3),
            )
            .unwrap(),
        );
        assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], CONTENT);
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 5);
        assert_eq!(v["modelVersion"], "g");

        let body = br#"{"tools":[{"functionDeclarations":[{"name":"get_weather"}]}]}"#;
        let v = full(answer(GeminiMethod::Generate, "g", false, body, &ctx(3)).unwrap());
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["functionCall"],
            json!({"name": "get_weather", "args": {"location": "Paris"}})
        );
        let body = br#"{"tools":[{"functionDeclarations":[{"name":"a"}]}],
            "toolConfig":{"functionCallingConfig":{"mode":"NONE"}}}"#;
        let v = full(answer(GeminiMethod::Generate, "g", false, body, &ctx(3)).unwrap());
        assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], CONTENT);
    }

    #[test]
    fn stream_sse_and_array() {
        let a = answer(GeminiMethod::Stream, "g", true, b"{}", &ctx(3)).unwrap();
        let (_, datas, pieces) = events(&a);
        assert_eq!(pieces, 3);
        assert_eq!(
            datas[0]["candidates"][0]["content"]["parts"][0]["text"],
            "tok1 "
        );
        assert!(datas[0]["candidates"][0].get("finishReason").is_none());
        assert_eq!(datas[2]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(datas[2]["usageMetadata"]["candidatesTokenCount"], 3);

        let Answer::Stream { pieces, .. } =
            answer(GeminiMethod::Stream, "g", false, b"{}", &ctx(2)).unwrap()
        else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&pieces.bytes).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    #[test]
    fn embeddings() {
        let body = br#"{"content":{"parts":[{"text":"hello"}]}}"#;
        let v = full(answer(GeminiMethod::Embed, "e", false, body, &ctx(1)).unwrap());
        assert_eq!(v["embedding"]["values"], json!(vector("hello").to_vec()));
        let body = br#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}"#;
        let v = full(answer(GeminiMethod::BatchEmbed, "e", false, body, &ctx(1)).unwrap());
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
        assert!(answer(GeminiMethod::Embed, "e", false, b"{}", &ctx(1)).is_err());
    }
}
