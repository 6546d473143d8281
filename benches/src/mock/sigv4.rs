//! AWS Signature Version 4 verification for the Bedrock routes.
//!
//! Written from the AWS documentation ("Create a signed AWS API request"), independently of the
//! gateway's signer, so a test that sends a gateway-signed request through the mock really
//! checks the signer. The mock recomputes the signature from the request it received with the
//! configured secret key and compares. The request time is not checked against the clock, so
//! recorded signatures (test vectors) still verify.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credentials requests must be signed with.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    /// Access key id expected in the `Credential` scope.
    pub access_key: String,
    /// Secret key the signature is recomputed with.
    pub secret_key: String,
}

impl Default for AwsKeys {
    fn default() -> Self {
        Self {
            access_key: "AKIDMOCK".to_owned(),
            secret_key: "mock-secret".to_owned(),
        }
    }
}

/// What the mock received, as needed to recompute a signature.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `POST`, …
    pub method: &'a str,
    /// The path exactly as received (percent-encoded).
    pub path: &'a str,
    /// The raw query string without `?` (may be empty).
    pub query: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// `:authority` of an h2 request, standing in for a missing `host` header.
    pub authority: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// Why a request was refused; each maps to AWS's 403 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No `Authorization` header.
    Missing,
    /// The header is not a well-formed SigV4 authorization.
    Malformed(String),
    /// The access key id is not the configured one.
    UnknownKey,
    /// The signature differs from the one the mock computed.
    Mismatch {
        /// The canonical request the mock signed.
        canonical_request: String,
        /// The string to sign the mock used.
        string_to_sign: String,
    },
}

impl SigError {
    /// `x-amzn-ErrorType` name and the JSON `message` AWS sends.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Self::Missing => (
                "MissingAuthenticationTokenException",
                "Missing Authentication Token".to_owned(),
            ),
            Self::Malformed(why) => ("IncompleteSignatureException", why.clone()),
            Self::UnknownKey => (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.".to_owned(),
            ),
            Self::Mismatch {
                canonical_request,
                string_to_sign,
            } => (
                "InvalidSignatureException",
                format!(
                    "The request signature we calculated does not match the signature you \
                     provided. Check your AWS Secret Access Key and signing method. Consult the \
                     service documentation for details.\n\nThe Canonical String for this request \
                     should have been\n'{canonical_request}'\n\nThe String-to-Sign should have \
                     been\n'{string_to_sign}'\n"
                ),
            ),
        }
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn malformed(why: &str) -> SigError {
    SigError::Malformed(why.to_owned())
}

fn parse_authorization<'v>(value: &'v str) -> Result<Authorization<'v>, SigError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            malformed("Authorization header must use the AWS4-HMAC-SHA256 algorithm.")
        })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((key, val)) = part.trim().split_once('=') else {
            return Err(malformed(&format!(
                "Authorization header parameter is not key=value: '{}'",
                part.trim()
            )));
        };
        match key {
            "Credential" => credential = Some(val),
            "SignedHeaders" => signed = Some(val),
            "Signature" => signature = Some(val),
            _ => {}
        }
    }
    let need = |v: Option<&'v str>, name: &str| {
        v.ok_or_else(|| {
            malformed(&format!(
                "Authorization header requires '{name}' parameter. Authorization={value}"
            ))
        })
    };
    let (credential, signed, signature) = (
        need(credential, "Credential")?,
        need(signed, "SignedHeaders")?,
        need(signature, "Signature")?,
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(malformed(&format!(
            "Credential should be scoped to a valid region, service and terminated by \
             aws4_request: '{credential}'"
        )));
    };
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(malformed("SignedHeaders must be lowercase and non-empty."));
    }
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Checks the request's SigV4 signature for `service` against `keys`.
pub fn verify(req: &Signed<'_>, keys: &AwsKeys, service: &str) -> Result<(), SigError> {
    let value = req
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SigError::Missing)?
        .to_str()
        .map_err(|_| malformed("Authorization header is not ASCII."))?;
    let auth = parse_authorization(value)?;
    if auth.access_key != keys.access_key {
        return Err(SigError::UnknownKey);
    }
    if auth.service != service {
        return Err(malformed(&format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(malformed(&format!("'{required}' must be a signed header.")));
        }
    }
    let amz_date =
        header_value(req, "x-amz-date").ok_or_else(|| malformed("Missing x-amz-date header."))?;
    if amz_date.len() != 16 || !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(malformed(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}'",
            auth.date,
            amz_date.get(..8).unwrap_or(&amz_date)
        )));
    }
    let canonical_request = canonical_request(req, &auth.signed_headers)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(&keys.secret_key, auth.date, auth.region, auth.service);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if expected == auth.signature {
        Ok(())
    } else {
        Err(SigError::Mismatch {
            canonical_request,
            string_to_sign,
        })
    }
}

/// The header's canonical value: every value trimmed, inner runs of spaces collapsed, joined
/// with commas. `host` falls back to the h2 `:authority`.
fn header_value(req: &Signed<'_>, name: &str) -> Option<String> {
    let values: Vec<String> = req
        .headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    if values.is_empty() {
        return (name == "host").then(|| req.authority.map(str::to_owned))?;
    }
    Some(values.join(","))
}

fn canonical_request(req: &Signed<'_>, signed_headers: &[&str]) -> Result<String, SigError> {
    let mut names = signed_headers.to_vec();
    names.sort_unstable();
    let mut headers = String::new();
    for name in &names {
        let value = header_value(req, name)
            .ok_or_else(|| malformed(&format!("Signed header '{name}' is missing.")))?;
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&value);
        headers.push('\n');
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        signed_headers.join(";"),
        hex::encode(Sha256::digest(req.body))
    ))
}

/// Every service but S3 encodes each segment of the (already encoded) path once more.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// Parameters decoded, re-encoded, sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 encoding: everything but `A-Za-z0-9-_.~` as `%XX` (upper-case hex).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid ones are kept as they are); `+` stays `+`.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        // HMAC takes keys of any length.
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Signs a request the way the AWS documentation describes (used by the tests, and handy for
/// a client script): returns the `Authorization` value for the given headers, all of which
/// are signed.
pub fn sign(
    req: &Signed<'_>,
    keys: &AwsKeys,
    region: &str,
    service: &str,
) -> Result<String, SigError> {
    let mut names: Vec<&str> = req
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| *n != "authorization")
        .collect();
    if req.headers.get("host").is_none() && req.authority.is_some() {
        names.push("host");
    }
    names.sort_unstable();
    names.dedup();
    let amz_date =
        header_value(req, "x-amz-date").ok_or_else(|| malformed("Missing x-amz-date header."))?;
    let date = amz_date.get(..8).unwrap_or_default();
    let canonical_request = canonical_request(req, &names)?;
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let signature = hex::encode(hmac(
        &signing_key(&keys.secret_key, date, region, service),
        string_to_sign.as_bytes(),
    ));
    Ok(format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        keys.access_key,
        names.join(";")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn keys() -> AwsKeys {
        AwsKeys {
            access_key: "AKIDEXAMPLE".to_owned(),
            secret_key: EXAMPLE_SECRET.to_owned(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    /// The IAM `ListUsers` example of the AWS General Reference (SigV4 walkthrough).
    #[test]
    fn aws_documentation_example() {
        let h = headers(&[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let req = Signed {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &h,
            authority: None,
            body: b"",
        };
        let auth = sign(&req, &keys(), "us-east-1", "iam").unwrap();
        assert!(
            auth.ends_with(
                "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            ),
            "{auth}"
        );
        let mut h = h.clone();
        h.insert("authorization", auth.parse().unwrap());
        let req = Signed { headers: &h, ..req };
        assert_eq!(verify(&req, &keys(), "iam"), Ok(()));
    }

    /// The gateway's golden Bedrock request (`bedrock/converse_text`), whose signature was
    /// cross-checked with botocore: exercises the double-encoded path (`%3A` → `%253A`).
    #[test]
    fn botocore_checked_bedrock_request() {
        let body = serde_json::json!({
            "inferenceConfig": {"maxTokens": 512, "stopSequences": ["\n\nHuman:"],
                "temperature": 0.5, "topP": 0.9},
            "messages": [{"content": [{"text": "Create a list of 3 pop songs."}], "role": "user"}],
            "system": [{"text": "You are an app that creates playlists for a radio station."}]
        });
        let body = serde_json::to_vec(&body).unwrap();
        let h = headers(&[
            ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=accept;content-type;host;x-amz-date, \
                 Signature=0713933fd7844489ac49a7a0f48517ae2b9f8f3c3bee70032a527020a83a8b93",
            ),
        ]);
        let req = Signed {
            method: "POST",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            query: "",
            headers: &h,
            authority: None,
            body: &body,
        };
        assert_eq!(verify(&req, &keys(), "bedrock"), Ok(()));

        // One byte of the body changed: rejected, with the canonical request in the message.
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        let err = verify(
            &Signed {
                body: &tampered,
                ..req
            },
            &keys(),
            "bedrock",
        )
        .unwrap_err();
        let SigError::Mismatch {
            canonical_request, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(
            canonical_request
                .contains("/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n")
        );
        assert!(
            err.describe()
                .1
                .starts_with("The request signature we calculated does not match")
        );

        // Wrong secret, unknown key, wrong service.
        let other = AwsKeys {
            secret_key: "nope".to_owned(),
            ..keys()
        };
        assert!(matches!(
            verify(&req, &other, "bedrock"),
            Err(SigError::Mismatch { .. })
        ));
        let stranger = AwsKeys {
            access_key: "AKIDOTHER".to_owned(),
            ..keys()
        };
        assert_eq!(
            verify(&req, &stranger, "bedrock"),
            Err(SigError::UnknownKey)
        );
        assert!(matches!(
            verify(&req, &keys(), "s3"),
            Err(SigError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let h = headers(&[("x-amz-date", "20150830T123600Z"), ("host", "h")]);
        let req = Signed {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            authority: None,
            body: b"",
        };
        assert_eq!(verify(&req, &keys(), "bedrock"), Err(SigError::Missing));
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/bedrock/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
             SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/bedrock/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        ] {
            let mut h = h.clone();
            h.insert("authorization", bad.parse().unwrap());
            let r = verify(&Signed { headers: &h, ..req }, &keys(), "bedrock");
            assert!(matches!(r, Err(SigError::Malformed(_))), "{bad}: {r:?}");
        }
    }

    #[test]
    fn query_and_path_canonical_forms() {
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
        assert_eq!(
            canonical_uri("/model/a%3Ab/converse"),
            "/model/a%253Ab/converse"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(percent_decode("a%2Fb%zz+"), "a/b%zz+");
    }
}
