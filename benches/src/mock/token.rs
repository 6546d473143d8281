//! `POST /token`: an OAuth2 token endpoint for the JWT-bearer grant (Google service
//! accounts, RFC 7523). Checks the form and that the assertion is a three-part JWT whose
//! header and claims are JSON objects; does not check the signature.

use serde_json::{Value, json};

use super::api::query_param;

/// The grant type a service account uses.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The access token handed out.
pub const ACCESS_TOKEN: &str = "ya29.mock";

/// Answers a token request body: `Ok(token JSON)` or `Err(OAuth error JSON)` (400).
pub fn exchange(body: &[u8]) -> Result<Value, Value> {
    let form = String::from_utf8_lossy(body).replace('+', " ");
    let grant = query_param(&form, "grant_type").unwrap_or_default();
    if grant != JWT_BEARER {
        return Err(json!({"error": "unsupported_grant_type",
            "error_description": format!("Invalid grant_type: {grant}")}));
    }
    let assertion = query_param(&form, "assertion").unwrap_or_default();
    if let Err(why) = check_jwt(&assertion) {
        return Err(json!({"error": "invalid_grant", "error_description": why}));
    }
    Ok(json!({"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}))
}

fn check_jwt(jwt: &str) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(format!("Invalid JWT: {} segments, expected 3", parts.len()));
    };
    for (name, part) in [("header", header), ("claims", claims)] {
        let bytes =
            base64url(part).ok_or_else(|| format!("Invalid JWT: {name} is not base64url"))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(_)) => {}
            _ => return Err(format!("Invalid JWT: {name} is not a JSON object")),
        }
    }
    if signature.is_empty() || base64url(signature).is_none() {
        return Err("Invalid JWT Signature.".to_owned());
    }
    Ok(())
}

/// Decodes unpadded base64url (RFC 4648 §5); `None` on any other character.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // {"alg":"RS256","typ":"JWT"} . {"iss":"a@b"} . "sig"
    const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhQGIifQ.c2ln";

    #[test]
    fn accepts_a_jwt_bearer_grant() {
        let body = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={JWT}"
        );
        let v = exchange(body.as_bytes()).unwrap();
        assert_eq!(v["access_token"], ACCESS_TOKEN);
        assert_eq!(v["expires_in"], 3600);
        let plain = format!("assertion={JWT}&grant_type={JWT_BEARER}");
        assert!(exchange(plain.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_bad_grants() {
        let e = exchange(b"grant_type=client_credentials").unwrap_err();
        assert_eq!(e["error"], "unsupported_grant_type");
        for bad in [
            "a.b",
            "x.y.z",
            "eyJhIjoxfQ.eyJhIjoxfQ.",
            "eyJhIjoxfQ.WzFd.c2ln",
        ] {
            let body = format!("grant_type={JWT_BEARER}&assertion={bad}");
            let e = exchange(body.as_bytes()).unwrap_err();
            assert_eq!(e["error"], "invalid_grant", "{bad}");
        }
        assert_eq!(base64url("aGk").unwrap(), b"hi");
    }
}
