//! `POST /v1/embeddings`: one deterministic 8-dimension vector per input, derived from a hash
//! of the input, so a test can compare vectors across calls and upstreams.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::prompt_tokens;

/// Dimensions of every mock embedding.
pub const DIMENSIONS: usize = 8;

#[derive(Deserialize)]
struct EmbeddingRequest {
    #[serde(default)]
    model: Option<String>,
    input: Value,
}

/// Builds the embeddings response for a request body.
pub fn embeddings_body(body: &[u8]) -> Result<Bytes, String> {
    let req: EmbeddingRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid embeddings request: {e}"))?;
    let inputs: Vec<String> = match &req.input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.iter().all(Value::is_number) => vec![req.input.to_string()],
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => return Err("input must be a string or an array".to_owned()),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| json!({"object": "embedding", "index": i, "embedding": vector(input)}))
        .collect();
    let p = prompt_tokens(body.len());
    let out = json!({
        "object": "list",
        "data": data,
        "model": req.model.as_deref().unwrap_or("mock"),
        "usage": {"prompt_tokens": p, "total_tokens": p},
    });
    serde_json::to_vec(&out)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// The embedding of `input`: FNV-1a of its bytes seeds a splitmix64 sequence mapped to
/// [-1, 1] and rounded to 6 decimals (so it survives a JSON round trip exactly).
pub fn vector(input: &str) -> [f64; DIMENSIONS] {
    let mut state = input.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut out = [0.0; DIMENSIONS];
    for slot in &mut out {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        *slot = ((unit * 2.0 - 1.0) * 1e6).round() / 1e6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_vector_per_input_deterministic() {
        let body = br#"{"model":"e","input":["a","b","a"]}"#;
        let v: Value = serde_json::from_slice(&embeddings_body(body).unwrap()).unwrap();
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(data[0]["embedding"], data[2]["embedding"]);
        assert_ne!(data[0]["embedding"], data[1]["embedding"]);
        assert_eq!(data[1]["index"], 1);
        assert_eq!(data[0]["embedding"].as_array().unwrap().len(), DIMENSIONS);
        assert_eq!(v["model"], "e");
        assert_eq!(v["usage"]["prompt_tokens"], (body.len() / 4) as u64);
    }

    #[test]
    fn string_and_token_inputs() {
        let v: Value =
            serde_json::from_slice(&embeddings_body(br#"{"input":"hello"}"#).unwrap()).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        let expected: Vec<f64> = vector("hello").to_vec();
        assert_eq!(v["data"][0]["embedding"], json!(expected));
        let v: Value =
            serde_json::from_slice(&embeddings_body(br#"{"input":[1,2,3]}"#).unwrap()).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        assert!(embeddings_body(br#"{"input":3}"#).is_err());
        assert!(vector("x").iter().all(|f| (-1.0..=1.0).contains(f)));
    }
}
