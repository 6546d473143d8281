use super::*;

fn parse_split(input: &[u8], split: usize) -> Vec<SseEvent> {
    let mut p = SseParser::default();
    let mut ev = Vec::new();
    p.feed(&input[..split], &mut ev).unwrap();
    p.feed(&input[split..], &mut ev).unwrap();
    p.finish(&mut ev);
    ev
}

fn parse_bytewise(input: &[u8]) -> Vec<SseEvent> {
    let mut p = SseParser::default();
    let mut ev = Vec::new();
    for b in input {
        p.feed(std::slice::from_ref(b), &mut ev).unwrap();
    }
    p.finish(&mut ev);
    ev
}

const STREAM: &[u8] = b": keep-alive\n\ndata: {\"a\":1}\n\nevent: message_start\ndata: line1\ndata:line2\r\n\r\ndata: x\rdata: y\r\rdata: [DONE]\n\n";

#[test]
fn every_split_gives_the_same_events() {
    let whole = parse_split(STREAM, STREAM.len());
    assert_eq!(whole.len(), 5);
    assert_eq!(whole[0].data, None);
    assert_eq!(whole[1].data.as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(whole[2].event.as_deref(), Some("message_start"));
    assert_eq!(whole[2].data.as_deref(), Some(&b"line1\nline2"[..]));
    assert_eq!(whole[3].data.as_deref(), Some(&b"x\ny"[..]));
    assert_eq!(whole[4].data.as_deref(), Some(&b"[DONE]"[..]));
    let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.clone()).collect();
    assert_eq!(raw, STREAM, "raw bytes reassemble the stream exactly");
    for split in 0..=STREAM.len() {
        assert_eq!(parse_split(STREAM, split), whole, "split at {split}");
    }
    assert_eq!(parse_bytewise(STREAM), whole);
}

#[test]
fn unterminated_last_event_is_flushed_on_finish() {
    let ev = parse_split(b"data: a\n\ndata: tail", 3);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].data.as_deref(), Some(&b"tail"[..]));
    assert_eq!(ev[1].raw, b"data: tail");
}

#[test]
fn stray_blank_lines_are_dropped() {
    let ev = parse_split(b"\n\n\ndata: a\n\n\n", 2);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].raw, b"data: a\n\n");
}

#[test]
fn oversized_event_is_an_error() {
    let mut p = SseParser::new(16);
    let mut ev = Vec::new();
    assert!(p.feed(b"data: 0123456789abcdef", &mut ev).is_err());
}
