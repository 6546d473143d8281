//! The streaming relay: upstream bytes → translator → client, chunk by chunk, with a tee
//! into an [`Accumulator`]. When the stream ends cleanly the assembled answer is sent on a
//! oneshot channel; a `wait_until` task waiting on it stores the session turns and fills
//! the cache after the client has its last byte. A failed or abandoned stream drops the
//! sender, so nothing is stored.

use std::pin::Pin;

use datamind_llm::error_body::ErrorBody;
use datamind_llm::stream::StreamTranslator;
use futures_channel::oneshot;
use futures_util::{Stream, StreamExt, stream};
use worker::console_error;

use crate::completion::{Accumulator, Completion};

/// Upstream body chunks.
pub type Upstream = Pin<Box<dyn Stream<Item = worker::Result<Vec<u8>>>>>;

/// One relayed stream.
pub struct Relay {
    upstream: Upstream,
    /// A chunk already read (to decide a fallback before the first byte).
    pending: Option<Vec<u8>>,
    translator: Box<dyn StreamTranslator>,
    tee: Option<(Accumulator, oneshot::Sender<Completion>)>,
    ended: bool,
}

impl Relay {
    /// A relay; `tee` receives the assembled answer when the stream ends cleanly.
    pub fn new(
        upstream: Upstream,
        pending: Option<Vec<u8>>,
        translator: Box<dyn StreamTranslator>,
        tee: Option<oneshot::Sender<Completion>>,
    ) -> Self {
        Self {
            upstream,
            pending,
            translator,
            tee: tee.map(|tx| (Accumulator::new(), tx)),
            ended: false,
        }
    }

    /// The client-facing byte stream.
    pub fn into_stream(self) -> impl Stream<Item = worker::Result<Vec<u8>>> + 'static {
        stream::unfold(self, |mut r| async move {
            r.next_out().await.map(|out| (Ok(out), r))
        })
    }

    fn fail(&mut self, out: &mut Vec<u8>, why: &str) {
        console_error!("relay: {why}");
        out.extend(
            ErrorBody::new(
                "api_error",
                Some("upstream_error"),
                "upstream stream failed",
            )
            .to_sse_event(),
        );
        self.tee = None;
        self.ended = true;
    }

    async fn next_out(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.ended {
                return None;
            }
            let next = match self.pending.take() {
                Some(c) => Some(Ok(c)),
                None => self.upstream.next().await,
            };
            let mut out = Vec::new();
            match next {
                Some(Ok(bytes)) => {
                    if let Err(e) = self.translator.feed(&bytes, &mut out) {
                        self.fail(&mut out, &e.to_string());
                    }
                }
                Some(Err(e)) => self.fail(&mut out, &e.to_string()),
                None => {
                    self.translator.finish(&mut out);
                    self.ended = true;
                }
            }
            if let Some((acc, _)) = &mut self.tee {
                acc.feed(&out);
            }
            if self.ended
                && let Some((acc, tx)) = self.tee.take()
                && let Some(answer) = acc.finish(self.translator.summary().usage)
            {
                let _ = tx.send(answer);
            }
            if !out.is_empty() {
                return Some(out);
            }
        }
    }
}
