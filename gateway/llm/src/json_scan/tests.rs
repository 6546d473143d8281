use super::testgen::{self, Rng};
use super::*;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// The whole document as one value, with `skip_value` then `finish`.
fn skip_all(doc: &[u8], strings: Strings) -> Result<Range<usize>, ScanError> {
    let mut s = Scanner::new(doc, strings);
    let range = s.skip_value()?;
    s.finish()?;
    Ok(range)
}

fn whole<T>(doc: &[u8], read: impl FnOnce(&mut Scanner<'_>) -> Result<T, ScanError>) -> Option<T> {
    let mut s = Scanner::new(doc, Strings::Checked);
    let v = read(&mut s).ok()?;
    s.finish().ok()?;
    Some(v)
}

#[test]
fn skips_values_and_returns_their_range() {
    let doc = br#" {"a": [1, -2.5e+3, "x\"y", {"b": null}], "c": true} "#;
    assert_eq!(skip_all(doc, Strings::Checked), Ok(1..doc.len() - 1));
    let mut s = Scanner::new(
        br#"{"k" : "v\u00e9" , "n":18446744073709551615}"#,
        Strings::Checked,
    );
    s.begin_object().unwrap();
    let mut first = true;
    let k = s.next_key(&mut first).unwrap().unwrap();
    assert_eq!((k.raw, k.unescaped), (2..3, None));
    assert_eq!(s.read_str().unwrap(), "v\u{e9}");
    let k = s.next_key(&mut first).unwrap().unwrap();
    assert_eq!(k.text(s.bytes()), b"n");
    assert_eq!(s.read_u64().unwrap(), u64::MAX);
    assert_eq!(s.next_key(&mut first).unwrap(), None);
    s.finish().unwrap();
}

#[test]
fn reads_strings_borrowed_or_unescaped() {
    let read = |doc: &[u8]| whole(doc, |s| s.read_str().map(Cow::into_owned));
    assert!(matches!(
        Scanner::new(br#""plain""#, Strings::Checked).read_str(),
        Ok(Cow::Borrowed("plain"))
    ));
    assert_eq!(
        read(br#""a\"\\\/\b\f\n\r\tz""#).as_deref(),
        Some("a\"\\/\u{8}\u{c}\n\r\tz")
    );
    assert_eq!(read(br#""\ud83d\ude00\u00e9""#).as_deref(), Some("😀é"));
    assert_eq!(read(br#""\ud83d""#), None, "lone leading surrogate");
    assert_eq!(read(br#""\ude00""#), None, "lone trailing surrogate");
    assert_eq!(read(br#""\ud83d\u0041""#), None);
    assert_eq!(read(b"\"\xff\""), None, "not UTF-8");
    assert_eq!(read(b"\"a\x01\""), None, "control character");
    // Long strings cross the eight-byte fast path at every alignment.
    for n in 0..40 {
        let text = format!("{}\\n{}é\"", "x".repeat(n), "y".repeat(n % 9));
        let doc = format!("\"{text}");
        let want = format!("{}\n{}é", "x".repeat(n), "y".repeat(n % 9));
        assert_eq!(read(doc.as_bytes()), Some(want), "n = {n}");
    }
}

#[test]
fn u64_is_digits_only() {
    let read = |doc: &[u8]| whole(doc, |s| s.read_u64());
    assert_eq!(read(b" 42 "), Some(42));
    assert_eq!(read(b"0"), Some(0));
    assert_eq!(read(b"18446744073709551616"), None);
    for bad in [&b"-0"[..], b"-1", b"1.0", b"1e2", b"01", b"\"1\"", b"null"] {
        assert_eq!(read(bad), None, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn nesting_is_unlimited_by_default_and_limited_on_request() {
    let doc = format!("{}1{}", "[{\"a\":".repeat(5000), "}]".repeat(5000));
    assert!(skip_all(doc.as_bytes(), Strings::Checked).is_ok());
    let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let limited = |doc: &str, max| {
        let mut s = Scanner::new(doc.as_bytes(), Strings::Checked).with_max_depth(max);
        s.skip_value().map_err(|e| e.kind)
    };
    assert!(limited(&nested(128), 128).is_ok());
    assert_eq!(limited(&nested(129), 128), Err(ScanErrorKind::TooDeep));
    // Containers the caller opened count too.
    let mut s = Scanner::new(b"{\"a\":[[]]}", Strings::Checked).with_max_depth(2);
    s.begin_object().unwrap();
    s.next_key(&mut true).unwrap();
    assert_eq!(
        s.skip_value().map_err(|e| e.kind),
        Err(ScanErrorKind::TooDeep)
    );
}

#[test]
fn errors_say_what_and_where() {
    let e = skip_all(b"[1,]", Strings::Checked).unwrap_err();
    assert_eq!(e.to_string(), "unexpected byte at byte 3");
    let e = skip_all(b"\"ab", Strings::Checked).unwrap_err();
    assert_eq!(e.kind, ScanErrorKind::Eof);
}

#[test]
fn writes_strings_as_serde_json_does() {
    for s in [
        "",
        "plain",
        "q\"b\\s/",
        "\u{0}\u{1f}\u{7f}\t\n\r\u{8}\u{c}",
        "é😀",
        "\u{1b}[0m",
    ] {
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
    }
}

/// Accept/reject and ranges agree with serde_json on the tricky corpus and thousands of
/// generated and mutated documents: `Checked` with `RawValue` (which checks UTF-8),
/// `Unchecked` with `IgnoredAny` (which does not).
#[test]
fn differential_against_serde_json() {
    let docs = testgen::corpus(0x5eed, 4000);
    let mut accepted = 0;
    for doc in &docs {
        let show = String::from_utf8_lossy(doc);
        let raw = serde_json::from_slice::<&RawValue>(doc);
        let ours = skip_all(doc, Strings::Checked);
        match (&raw, &ours) {
            (Ok(raw), Ok(range)) => {
                assert_eq!(raw.get().as_bytes(), &doc[range.clone()], "{show}");
                accepted += 1;
            }
            (Err(_), Err(_)) => {}
            _ => panic!("Checked: serde {raw:?}, ours {ours:?}: {show}"),
        }
        let ignored = serde_json::from_slice::<IgnoredAny>(doc).is_ok();
        let ours = skip_all(doc, Strings::Unchecked);
        assert_eq!(ignored, ours.is_ok(), "Unchecked: {ours:?}: {show}");

        let text = serde_json::from_slice::<String>(doc).ok();
        let ours = whole(doc, |s| s.read_str().map(Cow::into_owned));
        assert_eq!(text, ours, "read_str: {show}");
        let number = serde_json::from_slice::<u64>(doc).ok();
        assert_eq!(number, whole(doc, |s| s.read_u64()), "read_u64: {show}");
    }
    // Both outcomes are well represented, so the comparison means something.
    assert!(
        accepted > docs.len() / 4 && accepted < docs.len() * 3 / 4,
        "{accepted} of {}",
        docs.len()
    );
}

/// Every generated string, with and without the fast path's alignment, read like serde.
#[test]
fn differential_strings() {
    let mut rng = Rng::new(7);
    let pieces: &[&[u8]] = &[
        b"a",
        b"\\n",
        b"\\u00e9",
        b"\\ud83d",
        b"\\ude00",
        b"\\",
        b"\"",
        b"\xc3\xa9",
        b"\xc3",
        b"\x01",
        b"\xf0\x9f\x98\x80",
        b"\\uD83D\\uDE00",
        b"\\u12",
        b"xxxxxxxx",
        b"\x7f",
        b"\\uDFFF",
        b"\\uDBFF",
        b"\\uD7FF",
        b"\\uE000",
        b"\\uDC00",
        b"\\uD800",
    ];
    for _ in 0..5000 {
        let mut doc = b"\"".to_vec();
        for _ in 0..rng.below(8) {
            doc.extend_from_slice(rng.pick::<&[u8]>(pieces));
        }
        doc.push(b'"');
        let text = serde_json::from_slice::<String>(&doc).ok();
        let ours = whole(&doc, |s| s.read_str().map(Cow::into_owned));
        assert_eq!(text, ours, "{}", String::from_utf8_lossy(&doc));
        let raw = serde_json::from_slice::<&RawValue>(&doc).is_ok();
        assert_eq!(raw, skip_all(&doc, Strings::Checked).is_ok());
    }
}

#[test]
fn long_strings_find_every_special_byte_at_every_offset() {
    // Runs long enough for the 32-byte blocks, with one special piece at each offset.
    let specials: &[&[u8]] = &[
        b"\"",
        b"\\n",
        b"\\u00e9",
        b"\x01",
        b"\x1f",
        b"\\",
        b"\xc3\xa9",
        b"\xc3",
    ];
    for len in [31usize, 32, 33, 64, 95, 100] {
        for at in 0..=len {
            for piece in specials {
                let mut doc = b"\"".to_vec();
                doc.extend(std::iter::repeat_n(b'a', at));
                doc.extend_from_slice(piece);
                doc.extend(std::iter::repeat_n(b'b', len - at));
                doc.push(b'"');
                let text = serde_json::from_slice::<String>(&doc).ok();
                let ours = whole(&doc, |s| s.read_str().map(Cow::into_owned));
                assert_eq!(text, ours, "{}", String::from_utf8_lossy(&doc));
                let raw = serde_json::from_slice::<&RawValue>(&doc).is_ok();
                assert_eq!(
                    raw,
                    skip_all(&doc, Strings::Checked).is_ok(),
                    "{at} {piece:?}"
                );
            }
        }
        // Unterminated: the end of input inside a long run.
        let doc: Vec<u8> = std::iter::once(b'"')
            .chain(std::iter::repeat_n(b'a', len))
            .collect();
        assert!(skip_all(&doc, Strings::Checked).is_err());
    }
}
