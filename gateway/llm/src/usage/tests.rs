use super::*;
use crate::json_scan::testgen;

// === the serde structs these readers replaced: the reference for the differential test ===

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<AnswerChoice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct AnswerChoice {
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cache_read_tokens: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_creation_tokens: u.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

fn serde_usage(body: &[u8]) -> Option<Usage> {
    if !body.windows(7).any(|w| w == b"\"usage\"") {
        return None;
    }
    serde_json::from_slice::<WithUsage>(body)
        .ok()
        .and_then(|w| w.usage)
        .map(Usage::from)
}

fn serde_with_facts(body: &[u8]) -> (Option<Usage>, Option<AnswerFacts>) {
    match serde_json::from_slice::<Answer>(body) {
        Ok(a) => (
            a.usage.map(Usage::from),
            Some(AnswerFacts {
                id: a.id,
                model: a.model,
                finish_reasons: a
                    .choices
                    .into_iter()
                    .filter_map(|c| c.finish_reason)
                    .collect(),
            }),
        ),
        Err(_) => (serde_usage(body), None),
    }
}

/// Same usage and facts as the serde structs for the tricky corpus and thousands of
/// generated and mutated answers.
#[test]
fn differential_against_the_serde_structs() {
    let docs = testgen::corpus(0xa5_5e55, 5000);
    let (mut with_usage, mut with_facts, mut tail_valid, mut quick_valid) = (0, 0, 0, 0);
    for doc in &docs {
        let show = String::from_utf8_lossy(doc);
        let want = serde_usage(doc);
        let ours = Usage::from_openai_json(doc);
        if serde_json::from_slice::<serde_json::Value>(doc).is_ok() {
            // Valid JSON: the same, except that where the top level repeats `usage` (which
            // serde's struct refuses) the fast path takes the last, as JSON.parse would.
            let repeated = top_level_usage_keys(doc) > 1;
            assert!(ours == want || repeated, "usage: {show}");
            tail_valid += usize::from(super::quick::usage_at_tail(doc).is_some());
        } else {
            // Broken JSON: only a usage member at the very end may still be read.
            let tail = super::quick::usage_at_tail(doc).flatten();
            assert!(ours == want || ours == tail, "usage: {show}");
        }
        with_usage += usize::from(want.is_some());
        let want = serde_with_facts(doc);
        let (usage, facts) = Usage::with_facts_from_openai_json(doc);
        if serde_json::from_slice::<serde_json::Value>(doc).is_ok() {
            assert_eq!(facts, want.1, "facts: {show}");
            quick_valid += usize::from(super::quick::answer(doc).is_some());
            assert!(usage == want.0 || usage == ours, "facts usage: {show}");
        } else {
            // Broken JSON: the fast paths may still read what they look at.
            let quick = super::quick::answer(doc);
            assert!(
                facts == want.1 || facts == quick.clone().map(|q| q.1),
                "facts: {show}"
            );
            assert!(
                usage == want.0 || usage == ours || Some(usage) == quick.map(|q| q.0),
                "facts usage: {show}"
            );
        }
        with_facts += usize::from(want.1.is_some());
    }
    assert!(
        with_usage > 300 && with_facts > 1000 && tail_valid > 50 && quick_valid > 50,
        "{with_usage} {with_facts} {tail_valid} {quick_valid}"
    );
}

/// How many top-level members are named `usage` (escapes resolved).
fn top_level_usage_keys(doc: &[u8]) -> usize {
    let mut s = Scanner::new(doc, Strings::Unchecked);
    let mut n = 0;
    if s.begin_object().is_err() {
        return 0;
    }
    let mut first = true;
    while let Ok(Some(k)) = s.next_key(&mut first) {
        n += usize::from(k.text(doc) == b"usage");
        if s.skip_value().is_err() {
            break;
        }
    }
    n
}

#[test]
fn usage_as_the_last_member_is_read_from_the_end() {
    let tail = |b: &[u8]| super::quick::usage_at_tail(b);
    let u = |p, c| {
        Some(Some(Usage {
            prompt_tokens: p,
            completion_tokens: c,
            ..Usage::default()
        }))
    };
    assert_eq!(
        tail(br#"{"a":[1,{"b":"}"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#),
        u(3, 2)
    );
    assert_eq!(tail(br#" { "usage" : {"prompt_tokens":1} } "#), u(1, 0));
    assert_eq!(tail(br#"{"x":1,"usage":null}"#), Some(None));
    // Not the top level's last member, or not a key: the full scan decides.
    for other in [
        &br#"{"usage":{"prompt_tokens":1},"x":2}"#[..],
        br#"{"x":{"usage":{"prompt_tokens":1}}}"#,
        br#"{"usage":{"x":{"usage":{"prompt_tokens":1}}}}"#,
        br#"{"s":"a,"usage":{"prompt_tokens":1}"}"#,
        br#"{"x":"usage","y":1}"#,
        br#"["usage",{"prompt_tokens":1}]"#,
        br#"{"x":1 "usage":{"prompt_tokens":1}}"#,
        br#"{"x":1,"usage":{"prompt_tokens":"1"}}"#,
    ] {
        assert_eq!(tail(other), None, "{}", String::from_utf8_lossy(other));
    }
    // Nested usage in an inner object is not mistaken for the answer's.
    assert_eq!(
        Usage::from_openai_json(br#"{"usage":{"x":{"usage":{"prompt_tokens":1}}}}"#),
        Some(Usage::default())
    );
}

#[test]
fn the_mock_answer_in_every_split_reads_the_same() {
    // Not a stream: a body cut anywhere is invalid, and must not yield facts.
    let body = br#"{"id":"chatcmpl-mock-7","object":"chat.completion","created":1700000000,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock."},"finish_reason":"stop"}],"usage":{"prompt_tokens":15,"completion_tokens":5,"total_tokens":20}}"#;
    for cut in 0..body.len() {
        assert_eq!(
            Usage::with_facts_from_openai_json(&body[..cut]),
            serde_with_facts(&body[..cut]),
            "cut at {cut}"
        );
    }
    let (usage, facts) = Usage::with_facts_from_openai_json(body);
    assert_eq!(
        usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((15, 5))
    );
    assert_eq!(
        facts.map(|f| f.finish_reasons),
        Some(vec!["stop".to_owned()])
    );
}

#[test]
fn finds_substrings() {
    assert!(contains(b"ab\"usage\"", b"\"usage\""));
    assert!(contains(b"\"usage\"", b"\"usage\""));
    assert!(!contains(b"\"usag\"usage", b"\"usage\""));
    assert!(contains(b"\"\"usage\"", b"\"usage\""));
    assert!(!contains(b"", b"x"));
    assert!(!contains(b"abc", b""));
    for doc in testgen::corpus(3, 1000) {
        for needle in [&b"\"usage\""[..], b"\"", b"\"finish_reason\":\"", b"e"] {
            let want = doc.windows(needle.len()).any(|w| w == needle);
            assert_eq!(
                contains(&doc, needle),
                want,
                "{}",
                String::from_utf8_lossy(&doc)
            );
        }
    }
}

#[test]
fn one_parse_gives_usage_and_the_answer_facts() {
    let body = br#"{"id":"chatcmpl-1","model":"m-0613","choices":[{"message":{"content":"hi"},"finish_reason":"stop"},{"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
    let (usage, facts) = Usage::with_facts_from_openai_json(body);
    assert_eq!(usage, Usage::from_openai_json(body));
    assert_eq!(
        facts,
        Some(AnswerFacts {
            id: Some("chatcmpl-1".into()),
            model: Some("m-0613".into()),
            finish_reasons: vec!["stop".into(), "length".into()],
        })
    );
    // Not the answer's shape: usage as before, no facts.
    let odd = br#"{"id":7,"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
    assert_eq!(
        Usage::with_facts_from_openai_json(odd),
        (Usage::from_openai_json(odd), None)
    );
    assert_eq!(
        Usage::with_facts_from_openai_json(b"not json"),
        (None, None)
    );
}

#[test]
fn reads_usage_from_response_and_chunk() {
    let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
    assert_eq!(
        Usage::from_openai_json(body),
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 5,
            ..Usage::default()
        })
    );
    assert_eq!(Usage::from_openai_json(br#"{"choices":[]}"#), None);
    assert_eq!(Usage::from_openai_json(br#"{"usage":null}"#), None);
    // embeddings report only prompt tokens
    assert_eq!(
        Usage::from_openai_json(br#"{"usage":{"prompt_tokens":3,"total_tokens":3}}"#),
        Some(Usage {
            prompt_tokens: 3,
            ..Usage::default()
        })
    );
    let cached = br#"{"usage":{"prompt_tokens":30,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":20}}}"#;
    assert_eq!(
        Usage::from_openai_json(cached).map(|u| (u.prompt_tokens, u.cache_read_tokens)),
        Some((30, 20))
    );
}
