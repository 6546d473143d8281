//! Test inputs for the scanner and its users: hand-written tricky documents, a random
//! generator biased towards the fields the gateway reads, and a byte mutator. Deterministic
//! (a seeded xorshift), so a failure names its case and reproduces.

/// xorshift64*.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Documents that probe every rule serde_json enforces.
pub(crate) const TRICKY: &[&[u8]] = &[
    b"",
    b" ",
    b"{",
    b"}",
    b"{}",
    b" {} ",
    b"{} x",
    b"{}{}",
    b"[]",
    b"[1,2]",
    b"null",
    b"\"x\"",
    b"{\"a\":1,}",
    b"{\"a\":1 \"b\":2}",
    b"{\"a\" 1}",
    b"{\"a\":}",
    b"{,}",
    b"{\"a\":[1,]}",
    b"{\"a\":[,1]}",
    b"{\"a\":[1 2]}",
    b"{\"a\":{\"b\":1,}}",
    b"{\"a\":{1:2}}",
    b"{'a':1}",
    b"{a:1}",
    b"{\"a\":01}",
    b"{\"a\":-01}",
    b"{\"a\":-0}",
    b"{\"a\":-0.0}",
    b"{\"a\":1.}",
    b"{\"a\":.5}",
    b"{\"a\":1e}",
    b"{\"a\":1e+}",
    b"{\"a\":1E-2}",
    b"{\"a\":-}",
    b"{\"a\":+1}",
    b"{\"a\":NaN}",
    b"{\"a\":Infinity}",
    b"{\"a\":18446744073709551615}",
    b"{\"a\":18446744073709551616}",
    b"{\"a\":123456789012345678901234567890}",
    b"{\"a\":1e400}",
    b"{\"a\":tru}",
    b"{\"a\":truex}",
    b"{\"a\":nul}",
    b"{\"a\":True}",
    b"{\"a\":\"\x01\"}",
    b"{\"a\":\"\x1f\"}",
    b"{\"a\":\"\x7f\"}",
    b"{\"a\":\"tab\there\"}",
    b"{\"a\":\"\\x\"}",
    b"{\"a\":\"\\u12\"}",
    b"{\"a\":\"\\u12G4\"}",
    b"{\"a\":\"\\uD800\"}",
    b"{\"a\":\"\\uDC00\"}",
    b"{\"a\":\"\\uD800\\uDC00\"}",
    b"{\"a\":\"\\uD800\\u0041\"}",
    b"{\"a\":\"\\uD800\\n\"}",
    b"{\"a\":\"\\uD800x\"}",
    b"{\"a\":\"\\ud83d\\ude00\"}",
    b"{\"\\uD800\":1}",
    b"{\"\\ud83d\\ude00\":1}",
    b"{\"a\":\"\xc3\xa9\"}",
    b"{\"a\":\"\xc3\"}",
    b"{\"a\":\"\xff\"}",
    b"{\"a\":\"\xed\xa0\x80\"}",
    b"{\"a\":\"\xf0\x9f\x98\x80\"}",
    b"{\"\xff\":1}",
    b"{\"a\":[{\"\xff\":1}]}",
    b"{\"a\":\"unterminated}",
    b"{\"a\":\"abc\\",
    b"{\"a\":\"abc\\u00",
    b"\xef\xbb\xbf{}",
    b"{\"a\":1}\x00",
    b"{\"a\":[[[[[[[[[[]]]]]]]]]]}",
    b"{\"a\":[[[[[[[[[[]]]]]]]]]}",
    b"{\"a\":{\"b\":{\"c\":{}}}}",
    b"{\"model\":\"m\"}",
    b"{\"model\":\"\"}",
    b"{\"model\":null}",
    b"{\"model\":7}",
    b"{\"model\":\"a\",\"model\":\"b\"}",
    b"{\"model\":\"a\",\"model\":7}",
    b"{\"model\":\"\\uD800\"}",
    b"{\"mod\\u0065l\":\"m\"}",
    b"{\"model\":\"m\",\"stream\":true}",
    b"{\"model\":\"m\",\"stream\":null}",
    b"{\"model\":\"m\",\"stream\":1}",
    b"{\"model\":\"m\",\"stream_options\":null}",
    b"{\"model\":\"m\",\"stream_options\":{\"include_usage\":true}}",
    b"{\"model\":\"m\",\"stream_options\":{\"include_usage\":1}}",
    b"{\"model\":\"m\",\"stream_options\":[true]}",
    b"{\"model\":\"m\",\"stream_options\":[true,1]}",
    b"{\"model\":\"m\",\"stream_options\":{\"include_usage\":true,\"include_usage\":false}}",
    b"{\"model\":\"m\",\"max_tokens\":64}",
    b"{\"model\":\"m\",\"max_tokens\":-0}",
    b"{\"model\":\"m\",\"max_tokens\":-1}",
    b"{\"model\":\"m\",\"max_tokens\":1.0}",
    b"{\"model\":\"m\",\"max_tokens\":1e2}",
    b"{\"model\":\"m\",\"max_tokens\":18446744073709551616}",
    b"{\"model\":\"m\",\"max_completion_tokens\":null}",
    b"{\"usage\":null}",
    b"{\"usage\":{}}",
    b"{\"usage\":[]}",
    b"{\"usage\":[1,2]}",
    b"{\"usage\":[1,2,null,5]}",
    b"{\"usage\":[1,2,[3],5]}",
    b"{\"usage\":[1,2,null,5,6]}",
    b"[{\"prompt_tokens\":1}]",
    b"[null]",
    b"[{\"prompt_tokens\":1},2]",
    b"{\"usage\":{\"prompt_tokens\":1},\"usage\":null}",
    b"{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":2}}",
    b"{\"usage\":{\"prompt_tokens\":null}}",
    b"{\"usage\":{\"prompt_tokens\":-1}}",
    b"{\"usage\":{\"prompt_tokens\":1.5}}",
    b"{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":1},\"cache_creation_input_tokens\":4}}",
    b"{\"usage\":{\"prompt_tokens_details\":null,\"cache_creation_input_tokens\":null}}",
    b"{\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":null}}}",
    b"{\"usage\":{\"prompt_tokens_details\":[7]}}",
    b"{\"usage\":{\"prompt_tokens_details\":{\"audio_tokens\":\"\xff\"}}}",
    b"{\"us\\u0061ge\":{\"prompt_tokens\":1}}",
    b"{\"x\":\"\xff\",\"usage\":{\"prompt_tokens\":1}}",
    b"{\"x\":\"\\uDC00\",\"usage\":{\"prompt_tokens\":1}}",
    b"{\"\xff\":1,\"usage\":{\"prompt_tokens\":1}}",
    b"{\"usage\":{\"prompt_tokens\":1}} x",
    b"{\"id\":\"a\",\"model\":\"b\",\"choices\":[{\"finish_reason\":\"stop\"},{\"finish_reason\":null},{}],\"usage\":{\"prompt_tokens\":1}}",
    b"{\"id\":null,\"model\":null,\"choices\":[]}",
    b"{\"choices\":null}",
    b"{\"choices\":{}}",
    b"{\"choices\":[[\"stop\"]]}",
    b"{\"choices\":[[]]}",
    b"{\"choices\":[[\"stop\",1]]}",
    b"{\"choices\":[null]}",
    b"{\"choices\":[{\"finish_reason\":1}]}",
    b"{\"choices\":[{\"finish_reason\":\"a\",\"finish_reason\":\"b\"}]}",
    b"{\"choices\":[{\"finish_reason\":\"\\uD800\"}]}",
    b"{\"id\":\"\xff\"}",
    b"{\"id\":7,\"usage\":{\"prompt_tokens\":3}}",
    b"{\"id\":\"a\",\"id\":\"b\",\"usage\":{\"prompt_tokens\":3}}",
    b"[\"id\",\"model\",[],{\"prompt_tokens\":2}]",
    b"[\"id\",\"model\",[],{\"prompt_tokens\":2},5]",
];

/// Keys the gateway reads somewhere, and a few it does not.
const KEYS: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "include_usage",
    "max_tokens",
    "max_completion_tokens",
    "messages",
    "id",
    "choices",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "cache_creation_input_tokens",
    "total_tokens",
    "content",
    "x",
];

const NUMBERS: &[&str] = &[
    "0",
    "7",
    "-0",
    "-1",
    "12",
    "1.5",
    "1e3",
    "2E-2",
    "0.0",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e400",
    "-9223372036854775808",
];

const STRINGS: &[&str] = &[
    "",
    "stop",
    "length",
    "mock",
    "hello world",
    "\\\"q\\\"",
    "a\\\\b",
    "\\/",
    "\\b\\f\\n\\r\\t",
    "\\u0041",
    "\\u00e9",
    "\\uD83D\\uDE00",
    "\\uD800",
    "\\uDC00",
    "\\uD800\\u0041",
    "\\uDFFF",
    "\\uDBFF\\uDFFF",
    "\\uD7FF\\uE000",
    "é",
    "日本",
    "😀",
    "\\u0000",
];

/// A random document: an object (usually) whose keys come from [`KEYS`], values typed
/// after their key most of the time.
pub(crate) fn document(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.one_in(20) {
        value(rng, &mut out, 0, "x");
    } else {
        object(rng, &mut out, 0);
    }
    out
}

fn ws(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.one_in(8) {
        out.extend_from_slice(rng.pick::<&[u8]>(&[&b" "[..], b"\n", b"\t ", b"\r\n"]));
    }
}

fn object(rng: &mut Rng, out: &mut Vec<u8>, depth: usize) {
    out.push(b'{');
    let n = rng.below(6);
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        ws(rng, out);
        let key = *rng.pick(KEYS);
        out.push(b'"');
        if rng.one_in(30) {
            // The same key, escaped.
            if let Some(first) = key.chars().next() {
                out.extend_from_slice(format!("\\u{:04x}{}", first as u32, &key[1..]).as_bytes());
            }
        } else {
            out.extend_from_slice(key.as_bytes());
        }
        out.push(b'"');
        ws(rng, out);
        out.push(b':');
        ws(rng, out);
        value(rng, out, depth + 1, key);
    }
    ws(rng, out);
    out.push(b'}');
}

fn value(rng: &mut Rng, out: &mut Vec<u8>, depth: usize, key: &str) {
    let typed = !rng.one_in(4);
    let kind = match key {
        _ if !typed || depth > 5 => rng.below(if depth > 5 { 5 } else { 7 }),
        "model" | "id" | "finish_reason" | "content" => 0,
        "stream" | "include_usage" => 2,
        "max_tokens"
        | "max_completion_tokens"
        | "prompt_tokens"
        | "completion_tokens"
        | "cached_tokens"
        | "cache_creation_input_tokens"
        | "total_tokens" => 1,
        "choices" | "messages" => 5,
        "usage" | "stream_options" | "prompt_tokens_details" => 6,
        _ => rng.below(7),
    };
    match kind {
        0 => {
            out.push(b'"');
            out.extend_from_slice(rng.pick(STRINGS).as_bytes());
            out.push(b'"');
        }
        1 => out.extend_from_slice(rng.pick(NUMBERS).as_bytes()),
        2 => out.extend_from_slice(rng.pick::<&[u8]>(&[&b"true"[..], b"false"])),
        3 => out.extend_from_slice(b"null"),
        4 => out.extend_from_slice(rng.pick(NUMBERS).as_bytes()),
        5 => {
            out.push(b'[');
            let n = rng.below(4);
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                ws(rng, out);
                if key == "choices" && !rng.one_in(5) {
                    object(rng, out, depth + 1);
                } else {
                    value(rng, out, depth + 1, "x");
                }
            }
            out.push(b']');
        }
        _ => object(rng, out, depth + 1),
    }
}

/// Bytes a mutation inserts: structure, escapes, digits, and bytes JSON forbids.
const ALPHABET: &[u8] = b"{}[]\",:\\/u0123456789eE+-. \n\tntfrlDCx\x00\x1f\x7f\x80\xc3\xa9\xed\xff";

/// `doc` with one to three random edits.
pub(crate) fn mutate(rng: &mut Rng, doc: &[u8]) -> Vec<u8> {
    let mut out = doc.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 => out.insert(at, *rng.pick(ALPHABET)),
            1 if at < out.len() => {
                out.remove(at);
            }
            2 if at < out.len() => out[at] = *rng.pick(ALPHABET),
            3 => out.truncate(at),
            4 if at < out.len() => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ => out.insert(at, b' '),
        }
    }
    out
}

/// The hand-written corpus, then `n` generated documents and `n` mutated ones.
pub(crate) fn corpus(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut all: Vec<Vec<u8>> = TRICKY.iter().map(|d| d.to_vec()).collect();
    for _ in 0..n {
        all.push(document(&mut rng));
    }
    for _ in 0..n {
        let base = if rng.one_in(3) {
            rng.pick(TRICKY).to_vec()
        } else {
            document(&mut rng)
        };
        all.push(mutate(&mut rng, &base));
    }
    all
}
