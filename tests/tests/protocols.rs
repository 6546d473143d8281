//! Transport protocols on the API listener: h2c (prior knowledge) and TLS with ALPN
//! (HTTP/2 and HTTP/1.1), each carrying a real chat request and a stream; and an
//! `https://` upstream (Pingora's TLS connector), trusted through the standard
//! `SSL_CERT_FILE` and refused without it.

use std::process::Command;

use anyhow::{Context, Result, bail};
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream};
use datamind_e2e::{Gateway, GatewayConfig, KEY_ALL, MockSpec, ModelGroup, chat_body, stream_body};
use serde_json::{Value, json};

#[tokio::test]
async fn h2c_prior_knowledge_serves_chat_and_streams() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(std::time::Duration::from_secs(15))
        .build()?;
    let url = s.gateway.url("/v1/chat/completions");
    let resp = client
        .post(&url)
        .bearer_auth(KEY_ALL)
        .json(&chat_body(CHAT_MODEL, "hi"))
        .send()
        .await?;
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await?;
    assert_eq!(body["object"], "chat.completion", "{body}");

    let resp = client
        .post(&url)
        .bearer_auth(KEY_ALL)
        .json(&stream_body(CHAT_MODEL, "hi"))
        .send()
        .await?;
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert!(
        resp.headers().get("transfer-encoding").is_none(),
        "no TE header on h2"
    );
    let text = resp.text().await?;
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "stream over h2c: {text}"
    );
    Ok(())
}

/// A throwaway self-signed certificate for 127.0.0.1, made with the `openssl` CLI.
fn self_signed(dir: &std::path::Path) -> Result<(String, String)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("running openssl (Debian package `openssl`)")?;
    if !out.status.success() {
        bail!("openssl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    ))
}

/// A test CA and a server certificate for 127.0.0.1 it signed (webpki, which the
/// upstream connector uses, refuses a self-signed CA certificate as a server's):
/// (CA file, certificate chain file, key file).
fn ca_and_server_cert(dir: &std::path::Path) -> Result<(String, String, String)> {
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=datamind-e2e-ca",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ],
        &[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("server.pem"),
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .context("running openssl (Debian package `openssl`)")?;
        if !out.status.success() {
            bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok((p("ca.pem"), p("server.pem"), p("server.key")))
}

async fn curl(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .context("running curl")?;
    if !out.status.success() {
        bail!(
            "curl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn tls_listener_negotiates_h2_and_http1() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, key) = self_signed(dir.path())?;
    let tls = json!({"cert_file": cert, "key_file": key});
    let s = OneUpstream::start_with(MockSpec::named("up1"), |c| c.set("/server/tls", tls)).await?;
    let url = format!("https://{}/v1/chat/completions", s.gateway.api_addr());
    let body = chat_body(CHAT_MODEL, "over tls").to_string();
    let auth = format!("authorization: Bearer {KEY_ALL}");
    for (flag, want) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let args = [
            "--cacert",
            &cert,
            flag,
            "-H",
            &auth,
            "-d",
            &body,
            "-w",
            "\n%{http_version} %{http_code}",
            &url,
        ];
        let out = curl(&args).await?;
        let (json_text, meta) = out.rsplit_once('\n').context("curl output")?;
        assert_eq!(meta, format!("{want} 200"), "{flag}: {out}");
        let v: Value = serde_json::from_str(json_text)?;
        assert_eq!(v["object"], "chat.completion");
    }
    // Plain HTTP to a TLS listener is refused, not served.
    assert!(
        curl(&["--http1.1", &url.replace("https://", "http://")])
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let dir = tempfile::tempdir()?;
    let body_path = dir.path().join("body.json");
    std::fs::write(
        &body_path,
        chat_body(CHAT_MODEL, &"x".repeat(2 << 20)).to_string(),
    )?;
    let url = s.gateway.url("/v1/chat/completions");
    let auth = format!("authorization: Bearer {KEY_ALL}");
    let data = format!("@{}", body_path.display());
    let args = [
        "-v",
        "-o",
        "/dev/null",
        "-H",
        &auth,
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &data,
        &url,
    ];
    let out = tokio::process::Command::new("curl")
        .args(args)
        .output()
        .await?;
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(
        trace.contains("HTTP/1.1 100 Continue"),
        "no interim 100 response:\n{trace}"
    );
    assert!(trace.contains("HTTP/1.1 200"), "{trace}");
    Ok(())
}

/// A gateway whose provider is `https://`: here a second gateway serving TLS with a
/// certificate from a test CA in front of the mock, so the whole exchange is real TLS.
#[tokio::test]
async fn an_https_upstream_is_trusted_through_ssl_cert_file_and_refused_without_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = ca_and_server_cert(dir.path())?;
    let tls = json!({"cert_file": cert, "key_file": key});
    let back =
        OneUpstream::start_with(MockSpec::named("up1"), |c| c.set("/server/tls", tls)).await?;
    let front_config = GatewayConfig::new()
        .provider(json!({
            "name": "tls-up",
            "kind": "openai",
            "base_url": format!("https://{}/v1", back.gateway.api_addr()),
            "api_key": KEY_ALL,
        }))
        .model(ModelGroup::new(CHAT_MODEL).deployment("tls-up", CHAT_MODEL));
    let render = |api, admin| front_config.render(api, admin);

    let front = Gateway::start_with_env(render, &[("SSL_CERT_FILE", ca.as_str())]).await?;
    let resp = front
        .post(
            "/v1/chat/completions",
            KEY_ALL,
            &chat_body(CHAT_MODEL, "over https"),
        )
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion", "{v}");
    let resp = front
        .post(
            "/v1/chat/completions",
            KEY_ALL,
            &stream_body(CHAT_MODEL, "streamed"),
        )
        .await?;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await?;
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    // Both went through the back gateway, so over TLS.
    assert_eq!(back.mock.stats().await?.requests, 2);

    // Without the CA the certificate is not trusted: a gateway error, never a plain-text
    // fallback, and nothing reaches the mock.
    let untrusting = Gateway::start_with(render).await?;
    let resp = untrusting
        .post(
            "/v1/chat/completions",
            KEY_ALL,
            &chat_body(CHAT_MODEL, "untrusted"),
        )
        .await?;
    assert_eq!(resp.status(), 502);
    let e: Value = resp.json().await?;
    assert!(e["error"]["message"].is_string(), "{e}");
    assert!(!e.to_string().contains(KEY_ALL));
    assert_eq!(back.mock.stats().await?.requests, 2);
    Ok(())
}
