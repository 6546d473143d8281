//! Command-line options of `datamind-bench` and their validation into a [`Plan`]: bounded
//! runs only (requests and duration always capped) against loopback targets only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// Hard cap on `--duration` (and on a run bounded only by `--requests`).
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Hard cap on `--requests` (and on a run bounded only by `--duration`).
pub const MAX_REQUESTS: u64 = 50_000_000;
/// Hard cap on concurrency / connections.
pub const MAX_CONCURRENCY: usize = 4096;

const DEFAULT_BODY: &str =
    r#"{"model":"mock","messages":[{"role":"user","content":"Say hello in five words."}]}"#;

/// Load generator options.
#[derive(Debug, Clone, Args)]
pub struct LoadOptions {
    /// Target URL (http only; the host must be a loopback address or localhost).
    #[arg(long)]
    pub url: String,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// Request body: `@path` to read a file, or the literal text (default: a small chat request
    /// for POST, none otherwise).
    #[arg(long)]
    pub body: Option<String>,
    /// Extra header `name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Set `"stream": true` in the JSON body.
    #[arg(long)]
    pub stream: bool,
    /// Closed loop: requests in flight. Open loop (`--rate`): the most requests in flight.
    #[arg(short = 'c', long, default_value_t = 32)]
    pub concurrency: usize,
    /// Open loop: requests per second, each measured from its scheduled send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured requests to send (capped at 50M).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Measured seconds (default 10 when `--requests` is absent; capped at 600).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds of unrecorded load before measuring.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Use HTTP/2 with prior knowledge (h2c).
    #[arg(long)]
    pub h2: bool,
    /// HTTP/2 connections shared by the workers (HTTP/1.1 uses one per worker).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Sample this process (and its children) for RSS and CPU time; repeatable.
    #[arg(long = "pid")]
    pub pids: Vec<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A validated, bounded run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Request method.
    pub method: Method,
    /// Full URI (used as-is for h2; path and query for HTTP/1.1).
    pub uri: Uri,
    /// Path and query, for HTTP/1.1.
    pub path: Uri,
    /// Headers sent with every request (including Host and content-type).
    pub headers: HeaderMap,
    /// Body sent with every request.
    pub body: Bytes,
    /// Workers (closed loop) or the in-flight cap (open loop).
    pub concurrency: usize,
    /// Open-loop arrival rate.
    pub rate: Option<f64>,
    /// Measured requests to send at most.
    pub requests: u64,
    /// Measured time at most.
    pub duration: Duration,
    /// Unrecorded load first.
    pub warmup: Duration,
    /// HTTP/2 prior knowledge.
    pub h2: bool,
    /// HTTP/2 connections.
    pub connections: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Processes to sample.
    pub pids: Vec<u32>,
}

// === impl LoadOptions ===

impl LoadOptions {
    /// Checks the options and builds the plan; refuses non-loopback targets and unbounded runs.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let uri: Uri = self
            .url
            .parse()
            .with_context(|| format!("--url {:?}", self.url))?;
        if uri.scheme_str() != Some("http") {
            bail!("--url must be http:// (got {:?})", self.url);
        }
        let authority = uri.authority().context("--url has no host")?.clone();
        let ip = match authority.host() {
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            host => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .with_context(|| {
                    format!("--url host {host:?} is not an IP address or localhost")
                })?,
        };
        if !ip.is_loopback() {
            bail!("refusing non-loopback target {ip}: load is only sent to this machine");
        }
        let addr = SocketAddr::new(ip, authority.port_u16().unwrap_or(80));
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .context("--url path")?;
        let method: Method = self.method.to_uppercase().parse().context("--method")?;

        let mut body = match self.body.as_deref() {
            Some(b) => match b.strip_prefix('@') {
                Some(file) => Bytes::from(
                    std::fs::read(file).with_context(|| format!("reading --body {file}"))?,
                ),
                None => Bytes::from(b.to_owned()),
            },
            None if method == Method::POST => Bytes::from_static(DEFAULT_BODY.as_bytes()),
            None => Bytes::new(),
        };
        if self.stream {
            let mut value: serde_json::Value =
                serde_json::from_slice(&body).context("--stream needs a JSON object body")?;
            let object = value
                .as_object_mut()
                .context("--stream needs a JSON object body")?;
            object.insert("stream".to_owned(), serde_json::Value::Bool(true));
            body = Bytes::from(serde_json::to_vec(&value)?);
        }

        let mut headers = HeaderMap::new();
        if !self.h2 {
            headers.insert(HOST, HeaderValue::from_str(authority.as_str())?);
        }
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for raw in &self.headers {
            let (name, value) = raw
                .split_once(':')
                .with_context(|| format!("-H {raw:?}: expected 'name: value'"))?;
            let name: HeaderName = name.trim().parse().with_context(|| format!("-H {raw:?}"))?;
            let value: HeaderValue = value
                .trim()
                .parse()
                .with_context(|| format!("-H {raw:?}"))?;
            headers.insert(name, value);
        }

        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            bail!("-c must be 1..={MAX_CONCURRENCY}");
        }
        if self.connections == 0 || self.connections > MAX_CONCURRENCY {
            bail!("--connections must be 1..={MAX_CONCURRENCY}");
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0 && rate <= 1e7)
        {
            bail!("--rate must be in (0, 1e7]");
        }
        let requests = self.requests.unwrap_or(MAX_REQUESTS);
        if requests == 0 || requests > MAX_REQUESTS {
            bail!("--requests must be 1..={MAX_REQUESTS}");
        }
        let duration = match (self.duration, self.requests) {
            (Some(d), _) => seconds(d, "--duration")?,
            (None, Some(_)) => MAX_DURATION,
            (None, None) => Duration::from_secs(10),
        };
        if duration > MAX_DURATION {
            bail!("--duration is capped at {} s", MAX_DURATION.as_secs());
        }
        let warmup = seconds(self.warmup, "--warmup")?;
        if warmup > MAX_DURATION {
            bail!("--warmup is capped at {} s", MAX_DURATION.as_secs());
        }
        Ok(Plan {
            addr,
            method,
            uri,
            path,
            headers,
            body,
            concurrency: self.concurrency,
            rate: self.rate,
            requests,
            duration,
            warmup,
            h2: self.h2,
            connections: self.connections.min(self.concurrency),
            timeout: seconds(self.timeout, "--timeout")?,
            pids: self.pids.clone(),
        })
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value >= 0.0) {
        bail!("{flag} must be a non-negative number of seconds");
    }
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: LoadOptions,
    }

    fn plan(args: &[&str]) -> anyhow::Result<Plan> {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.opts.plan()
    }

    #[test]
    fn refuses_non_loopback_and_tls() {
        assert!(plan(&["--url", "http://10.0.0.1:80/x"]).is_err());
        assert!(plan(&["--url", "http://example.com/x"]).is_err());
        assert!(plan(&["--url", "https://127.0.0.1/x"]).is_err());
        assert!(plan(&["--url", "http://[::1]:8080/x"]).is_ok());
    }

    #[test]
    fn runs_are_always_bounded() {
        let p = plan(&["--url", "http://localhost:9/v1/chat/completions"]).unwrap();
        assert_eq!(
            (p.requests, p.duration),
            (MAX_REQUESTS, Duration::from_secs(10))
        );
        let p = plan(&["--url", "http://127.0.0.1:9/", "--requests", "100"]).unwrap();
        assert_eq!((p.requests, p.duration), (100, MAX_DURATION));
        assert!(plan(&["--url", "http://127.0.0.1:9/", "--duration", "1e9"]).is_err());
        assert!(plan(&["--url", "http://127.0.0.1:9/", "--requests", "0"]).is_err());
    }

    #[test]
    fn stream_flag_and_headers() {
        let p = plan(&[
            "--url",
            "http://127.0.0.1:9/v1/chat/completions?x=1",
            "--stream",
            "-H",
            "Authorization: Bearer k",
        ])
        .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(p.headers["authorization"], "Bearer k");
        assert_eq!(p.headers["host"], "127.0.0.1:9");
        assert_eq!(p.path, "/v1/chat/completions?x=1");
        assert_eq!(p.addr, "127.0.0.1:9".parse::<SocketAddr>().unwrap());
    }
}
