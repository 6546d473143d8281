//! Identity helpers: signing keys and tokens, a JWKS server on loopback that counts its
//! fetches, and a client for the gateway's admin key API.
//!
//! Keys are generated per test with the `openssl` CLI (RSA 2048, EC P-256) and turned
//! into JWKs with `jsonwebtoken`, so no key material is checked in.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::Gateway;

/// A private key that signs tokens, with its public half as PEM and as a JWK.
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub public_pem: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn openssl(args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

// === impl SigningKey ===

impl SigningKey {
    /// A fresh RSA 2048 key for RS256.
    pub fn rs256(kid: &str) -> Result<Self> {
        Self::generate(
            Algorithm::RS256,
            kid,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        )
    }

    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> Result<Self> {
        Self::generate(
            Algorithm::ES256,
            kid,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        )
    }

    fn generate(alg: Algorithm, kid: &str, genpkey: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("key.pem");
        let p = path.to_str().context("temp path")?;
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey);
        args.extend_from_slice(&["-out", p]);
        openssl(&args)?;
        let private = std::fs::read(&path)?;
        let public_pem = String::from_utf8(openssl(&["pkey", "-in", p, "-pubout"])?)?;
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&private)?,
            _ => EncodingKey::from_rsa_pem(&private)?,
        };
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, alg)?)?;
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Ok(Self {
            alg,
            kid: kid.to_owned(),
            public_pem,
            encoding,
            jwk,
        })
    }

    /// The public key as a JWK (with `kid`).
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// Signs `claims` with this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        self.sign_as(&self.kid, claims)
    }

    /// Signs `claims` but names `kid` in the header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> Result<String> {
        let mut h = Header::new(self.alg);
        h.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(&h, claims, &self.encoding)?)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// RFC 3339 (UTC, whole seconds) for a Unix time.
pub fn rfc3339(t: i64) -> String {
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// base64url without padding (for hand-made tokens).
pub fn b64url(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for i in 0..=c.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A JWKS endpoint on 127.0.0.1 (HTTP/1.1, one response per connection) that counts the
/// requests it answered. Stops when dropped.
pub struct JwksServer {
    addr: SocketAddr,
    fetches: Arc<AtomicUsize>,
    keys: Arc<Mutex<Value>>,
    task: tokio::task::JoinHandle<()>,
}

// === impl JwksServer ===

impl JwksServer {
    /// Serves `{"keys": jwks}` at `/jwks.json`.
    pub async fn start(jwks: Vec<Value>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fetches = Arc::new(AtomicUsize::new(0));
        let keys = Arc::new(Mutex::new(json!({ "keys": jwks })));
        let (f, k) = (fetches.clone(), keys.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (f, k) = (f.clone(), k.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    f.fetch_add(1, Ordering::SeqCst);
                    let body = k.lock().await.to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Ok(Self {
            addr,
            fetches,
            keys,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// Requests answered so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Replaces the served key set (an identity provider rotating its keys).
    pub async fn set_keys(&self, jwks: Vec<Value>) {
        *self.keys.lock().await = json!({ "keys": jwks });
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client of the gateway's admin key API, authenticated with `admin_key`.
pub struct AdminApi<'a> {
    pub gateway: &'a Gateway,
    pub admin_key: &'a str,
}

// === impl AdminApi ===

impl AdminApi<'_> {
    /// `method path` with an optional JSON body; returns (status, JSON body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .gateway
            .http()
            .request(method.parse()?, self.gateway.admin_url(path))
            .bearer_auth(self.admin_key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let v = serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: {status} body is not JSON: {text:?}"))?;
        Ok((status, v))
    }

    /// Creates a key; returns (id, clear key).
    pub async fn create(&self, body: &Value) -> Result<(String, String)> {
        let (status, v) = self.call("POST", "/admin/keys", Some(body)).await?;
        if status != 201 {
            bail!("create answered {status}: {v}");
        }
        Ok((
            v["id"].as_str().context("no id")?.to_owned(),
            v["key"].as_str().context("no key")?.to_owned(),
        ))
    }
}

/// A JWKS served over HTTPS by `openssl s_server -WWW` on 127.0.0.1, with a certificate
/// for `localhost` from a throwaway CA (trust it with `SSL_CERT_FILE` = [`Self::ca_file`]).
pub struct HttpsJwks {
    _process: crate::process::ChildProcess,
    dir: tempfile::TempDir,
    port: u16,
}

// === impl HttpsJwks ===

impl HttpsJwks {
    /// Serves `{"keys": jwks}` at `https://localhost:PORT/jwks.json`.
    pub async fn start(jwks: Vec<Value>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
        let (ca_key, ca, key, csr, cert, ext) = (
            path("ca.key"),
            path("ca.pem"),
            path("tls.key"),
            path("tls.csr"),
            path("tls.pem"),
            path("ext.cnf"),
        );
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "1",
            "-subj",
            "/CN=datamind e2e CA",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ])?;
        std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "1",
            "-extfile",
            &ext,
        ])?;
        std::fs::write(
            dir.path().join("jwks.json"),
            json!({ "keys": jwks }).to_string(),
        )?;
        let port = crate::gateway::free_addr()?.port();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", &cert, "-key", &key])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let process = crate::process::ChildProcess::spawn(&mut cmd, "openssl s_server", None)?;
        crate::eventually(
            "openssl s_server to listen",
            std::time::Duration::from_secs(5),
            || async move {
                Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ()))
            },
        )
        .await?;
        Ok(Self {
            _process: process,
            dir,
            port,
        })
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/jwks.json", self.port)
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    pub fn ca_file(&self) -> String {
        self.dir
            .path()
            .join("ca.pem")
            .to_string_lossy()
            .into_owned()
    }
}
