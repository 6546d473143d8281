//! AWS Signature Version 4 as a pure function of (request, credentials, region, time).
//!
//! Hand-written over `hmac` + `sha2` rather than `aws-sigv4`, whose runtime crates pull in
//! an async runtime this portable crate must not have. Checked against the published AWS
//! examples in the tests below. The mock upstream can call [`authorization`] to verify a
//! signature.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::providers::AwsCredentials;

type HmacSha256 = Hmac<Sha256>;

/// What is signed.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path exactly as sent (already percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?` (may be empty).
    pub query: &'a str,
    /// Headers to sign (names any case; `host` and `x-amz-date` must be among them).
    pub headers: &'a [crate::providers::Header<'a>],
    /// The body.
    pub body: &'a [u8],
    /// `bedrock`, `s3`, …
    pub service: &'a str,
    /// `us-east-1`, …
    pub region: &'a str,
    /// S3 signs the path as sent; every other service encodes each segment once more.
    pub double_encode_path: bool,
}

/// `20150830T123600Z` for a Unix time.
pub fn amz_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` if `keep_slash`).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The `Authorization` header value for `req`, signed at `amz_date` (`YYYYMMDDTHHMMSSZ`,
/// which must also be the request's `x-amz-date` header).
pub fn authorization(req: &SignRequest<'_>, creds: &AwsCredentials<'_>, amz_date: &str) -> String {
    let date = &amz_date[..amz_date.len().min(8)];
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let path = if req.double_encode_path {
        req.path
            .split('/')
            .map(|seg| uri_encode(seg, false))
            .collect::<Vec<_>>()
            .join("/")
    } else {
        req.path.to_owned()
    };
    let mut query: Vec<&str> = req.query.split('&').filter(|q| !q.is_empty()).collect();
    query.sort_unstable();
    let query: Vec<String> = query
        .iter()
        .map(|q| {
            if q.contains('=') {
                (*q).to_owned()
            } else {
                format!("{q}=")
            }
        })
        .collect();
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        if path.is_empty() { "/" } else { &path },
        query.join("&"),
        canonical_headers,
        signed,
        hex::encode(Sha256::digest(req.body))
    );
    let scope = format!("{date}/{}/{}/aws4_request", req.region, req.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, req.region.as_bytes());
    let k_service = hmac(&k_region, req.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: AwsCredentials<'static> = AwsCredentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };

    fn h(pairs: &[(&'static str, &'static str)]) -> Vec<crate::providers::Header<'static>> {
        pairs.iter().map(|(k, v)| (*k, (*v).into())).collect()
    }

    #[test]
    fn formats_amz_date() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
    }

    /// `get-vanilla` and `post-vanilla` from the AWS SigV4 test suite.
    #[test]
    fn matches_aws_test_suite_vanilla_cases() {
        let headers = h(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        for (method, sig) in [
            (
                "GET",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "POST",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
        ] {
            let req = SignRequest {
                method,
                path: "/",
                query: "",
                headers: &headers,
                body: b"",
                service: "service",
                region: "us-east-1",
                double_encode_path: true,
            };
            assert_eq!(
                authorization(&req, &CREDS, "20150830T123600Z"),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature={sig}"
                )
            );
        }
    }

    /// The S3 `GetObject` example of the AWS "Authenticating Requests" guide.
    #[test]
    fn matches_s3_get_object_example() {
        let creds = AwsCredentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = h(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", empty),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let req = SignRequest {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            body: b"",
            service: "s3",
            region: "us-east-1",
            double_encode_path: false,
        };
        assert!(authorization(&req, &creds, "20130524T000000Z").ends_with(
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ));
    }

    #[test]
    fn double_encodes_model_ids_for_bedrock() {
        assert_eq!(
            uri_encode("anthropic.claude-v2:1", false),
            "anthropic.claude-v2%3A1"
        );
        assert_eq!(
            uri_encode("anthropic.claude-v2%3A1", false),
            "anthropic.claude-v2%253A1"
        );
    }
}
