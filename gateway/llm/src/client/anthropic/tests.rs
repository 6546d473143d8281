use super::*;

#[test]
fn tool_results_become_tool_messages_before_the_user_text() {
    let body = br#"{"model":"claude","max_tokens":50,"system":[{"type":"text","text":"Be brief."}],
      "messages":[{"role":"user","content":"Weather?"},
      {"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"18C"}]},{"type":"text","text":"Thanks"}]}],
      "tool_choice":{"type":"any","disable_parallel_tool_use":true},
      "tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object"}}]}"#;
    let r = to_openai_request(body).unwrap();
    let v: Value = serde_json::from_slice(&r.openai_body).unwrap();
    let m = v["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role":"system","content":"Be brief."}));
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        m[3],
        json!({"role":"tool","tool_call_id":"toolu_1","content":"18C"})
    );
    assert_eq!(m[4], json!({"role":"user","content":"Thanks"}));
    assert_eq!(v["tool_choice"], "required");
    assert_eq!(v["parallel_tool_calls"], false);
    assert!(!r.stream);
}

#[test]
fn requires_max_tokens_and_rejects_server_tools() {
    let e = to_openai_request(br#"{"model":"c","messages":[]}"#).unwrap_err();
    assert_eq!(e.param(), Some("max_tokens"));
    let e = to_openai_request(
        br#"{"model":"c","max_tokens":1,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.param(), Some("tools"));
}

#[test]
fn maps_errors_and_counts_tokens() {
    let b = error_to_anthropic(
        429,
        br#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#,
    );
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v,
        json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})
    );
    let n = estimate_tokens(br#"{"model":"c","messages":[{"role":"user","content":"abcdefgh"}]}"#);
    assert_eq!(n, 2 + 3 + 1);
    assert_eq!(
        count_tokens_response(br#"{"messages":[]}"#),
        br#"{"input_tokens":1}"#.to_vec()
    );
}
