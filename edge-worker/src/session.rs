//! Chat sessions: how stored history and a new request become one conversation.
//!
//! A client names a session with `x-session-id`. The worker loads the session's messages
//! (oldest first, tenant-scoped, from D1) and calls [`merge_history`]: the client's
//! leading `system`/`developer` messages stay first, then the history, then the rest of
//! the client's messages. After a complete answer the client's new turns and the
//! assistant's reply are appended ([`turns_to_store`]), each with a token count.

use serde_json::{Map, Value, json};

use crate::EdgeError;
use crate::completion::Completion;

/// Longest accepted session id.
pub const MAX_SESSION_ID: usize = 128;

/// A message to append to a session.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTurn {
    /// `user`, `assistant`, `tool`, …
    pub role: String,
    /// The whole message object, as the client (or upstream) sent it.
    pub message: Value,
    /// Tokens: the upstream's count for the answer; an estimate (4 bytes/token) otherwise.
    pub tokens: u64,
}

/// Checks a session id: 1–128 characters of `[A-Za-z0-9._:-]`.
pub fn validate_session_id(id: &str) -> Result<(), EdgeError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_SESSION_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(EdgeError::BadRequest {
            message: "x-session-id must be 1-128 characters of [A-Za-z0-9._:-]".into(),
            param: None,
        })
    }
}

fn is_instruction(m: &Value) -> bool {
    matches!(
        m.get("role").and_then(Value::as_str),
        Some("system" | "developer")
    )
}

/// Prepends `history` to the request's `messages` (after its leading instructions) and
/// returns the client's own non-instruction messages: the turns to store afterwards.
pub fn merge_history(
    req: &mut Map<String, Value>,
    history: Vec<Value>,
) -> Result<Vec<Value>, EdgeError> {
    let Some(Value::Array(messages)) = req.get_mut("messages") else {
        return Err(EdgeError::BadRequest {
            message: "`messages` must be an array".into(),
            param: Some("messages"),
        });
    };
    let client = std::mem::take(messages);
    let lead = client.iter().take_while(|m| is_instruction(m)).count();
    let new_turns: Vec<Value> = client[lead..]
        .iter()
        .filter(|m| !is_instruction(m))
        .cloned()
        .collect();
    let mut merged = Vec::with_capacity(client.len() + history.len());
    merged.extend_from_slice(&client[..lead]);
    merged.extend(history);
    merged.extend(client.into_iter().skip(lead));
    *messages = merged;
    Ok(new_turns)
}

/// Tokens in a message, estimated at four bytes per token of its content.
pub fn estimate_tokens(message: &Value) -> u64 {
    let bytes = match message.get("content") {
        Some(Value::String(s)) => s.len(),
        Some(Value::Null) | None => 0,
        Some(other) => other.to_string().len(),
    };
    (bytes as u64).div_ceil(4).max(1)
}

/// The rows to append after `answer`: the client's new turns, then the assistant's reply.
pub fn turns_to_store(new_turns: &[Value], answer: &Completion) -> Vec<StoredTurn> {
    let mut out: Vec<StoredTurn> = new_turns
        .iter()
        .map(|m| StoredTurn {
            role: m
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("user")
                .to_owned(),
            message: m.clone(),
            tokens: estimate_tokens(m),
        })
        .collect();
    let reply = json!({"role": "assistant", "content": answer.content});
    let tokens = answer
        .usage
        .map(|u| u.completion_tokens)
        .filter(|t| *t > 0)
        .unwrap_or_else(|| estimate_tokens(&reply));
    out.push(StoredTurn {
        role: "assistant".into(),
        message: reply,
        tokens,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datamind_llm::Usage;

    #[test]
    fn history_goes_after_instructions_and_before_new_turns() {
        let mut req = json!({"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":"and now?"}]})
        .as_object()
        .cloned()
        .unwrap();
        let history = vec![
            json!({"role":"user","content":"hi"}),
            json!({"role":"assistant","content":"hello"}),
        ];
        let new = merge_history(&mut req, history).unwrap();
        let roles: Vec<&str> = req["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["be brief", "hi", "hello", "and now?"]);
        assert_eq!(new, vec![json!({"role":"user","content":"and now?"})]);
    }

    #[test]
    fn messages_must_be_an_array() {
        let mut req = json!({"model":"m","messages":"hi"})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(merge_history(&mut req, vec![]).unwrap_err().status(), 400);
    }

    #[test]
    fn stored_turns_carry_token_counts() {
        let answer = Completion {
            content: "fine".into(),
            finish_reason: "stop".into(),
            usage: Usage::from_openai_json(
                br#"{"usage":{"prompt_tokens":10,"completion_tokens":3}}"#,
            ),
            ..Completion::default()
        };
        let turns = turns_to_store(&[json!({"role":"user","content":"how are you?"})], &answer);
        assert_eq!(turns.len(), 2);
        assert_eq!((turns[0].role.as_str(), turns[0].tokens), ("user", 3));
        assert_eq!((turns[1].role.as_str(), turns[1].tokens), ("assistant", 3));
        assert_eq!(turns[1].message["content"], "fine");
    }

    #[test]
    fn session_ids_are_checked() {
        assert!(validate_session_id("s-1:a.b_c").is_ok());
        assert!(validate_session_id("").is_err());
        assert!(validate_session_id("a b").is_err());
        assert!(validate_session_id(&"x".repeat(129)).is_err());
    }
}
