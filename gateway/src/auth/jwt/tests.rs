use std::process::Command;

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use super::*;
use crate::auth::now_secs;
use crate::config::JwtClaimNames;

const ISS: &str = "https://idp.test";

/// A fresh P-256 key pair (private PEM, public PEM) from the `openssl` CLI.
fn ec_pair() -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let k = key.to_str().unwrap();
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        k,
    ]);
    let private = run(&["pkcs8", "-topk8", "-nocrypt", "-in", k]);
    let public = run(&["ec", "-in", k, "-pubout"]);
    (private, String::from_utf8(public).unwrap())
}

fn issuer(public_pem: &str) -> JwtConfig {
    JwtConfig {
        issuers: vec![JwtIssuerConfig {
            issuer: ISS.into(),
            audiences: vec!["datamind".into()],
            algorithms: vec!["ES256".into()],
            jwks_url: None,
            keys: vec![JwtStaticKey {
                kid: Some("k1".into()),
                pem: Some(public_pem.into()),
                pem_file: None,
            }],
            leeway_seconds: 0,
            jwks_cache_seconds: 60,
            jwks_min_refresh_seconds: 30,
            jwks_timeout_ms: 1000,
            claims: JwtClaimNames::default(),
            default_tenant: None,
            default_models: vec!["*".into()],
        }],
        ..JwtConfig::default()
    }
}

fn sign(private: &[u8], kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    encode(&h, claims, &EncodingKey::from_ec_pem(private).unwrap()).unwrap()
}

#[tokio::test]
async fn maps_claims_and_refuses_what_does_not_verify() {
    let (private, public) = ec_pair();
    let auth = JwtAuth::from_config(&issuer(&public), &AuthMetrics::default());
    let tenants = Tenants::default();
    let now = now_secs();
    let good = json!({"iss": ISS, "aud": "datamind", "sub": "alice", "exp": now + 60,
        "tenant": "t1", "models": "a b", "limits": {"rpm": 7}});
    let c = auth
        .verify(&sign(&private, "k1", &good), now, &tenants)
        .await
        .unwrap();
    assert_eq!(c.key_id, format!("jwt:{ISS}:alice"));
    assert_eq!(&*c.tenant, "t1");
    assert!(c.may_use("b") && !c.may_use("c"));
    assert_eq!(c.limits.rpm, Some(7));

    let mut cases = vec![
        (json!({"exp": now - 10}), "expired"),
        (json!({"nbf": now + 600}), "not valid yet"),
        (json!({"aud": "other"}), "audience"),
        (json!({"iss": "https://evil"}), "issuer"),
        (json!({"tenant": 5}), "tenant claim"),
        (json!({"limits": {"rpm": 0}}), "limits claim"),
        (json!({"models": [1]}), "models claim"),
    ];
    cases.push((json!({"sub": ""}), "sub claim"));
    for (patch, want) in cases {
        let mut claims = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let e = auth
            .verify(&sign(&private, "k1", &claims), now, &tenants)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401);
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
    let e = auth
        .verify(&sign(&private, "k2", &good), now, &tenants)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("key is unknown"), "{e}");

    // HS256 "signed" with the public key: refused before any key is tried.
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let e = auth.verify(&hs, now, &tenants).await.unwrap_err();
    assert!(e.to_string().contains("algorithm is not allowed"), "{e}");

    // alg none.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(good.to_string().as_bytes())
    );
    assert_eq!(
        auth.verify(&none, now, &tenants)
            .await
            .unwrap_err()
            .status(),
        401
    );

    // Tampered payload.
    let token = sign(&private, "k1", &good);
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = good.clone();
    evil["tenant"] = json!("root");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(evil.to_string().as_bytes()),
        parts[2]
    );
    let e = auth.verify(&forged, now, &tenants).await.unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");

    let huge = "a".repeat(9000);
    let e = auth.verify(&huge, now, &tenants).await.unwrap_err();
    assert!(e.to_string().contains("too long"), "{e}");
}

fn b64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn recognises_jwt_shapes() {
    assert!(looks_like_jwt("aGk.eyJ9.c2ln"));
    assert!(!looks_like_jwt("sk-datamind-dev"));
    assert!(!looks_like_jwt("a.b"));
    assert!(!looks_like_jwt("a.b.c.d"));
    assert!(!looks_like_jwt("a..c"));
    assert!(!looks_like_jwt("a.b+.c"));
}

#[test]
fn only_asymmetric_algorithms_are_accepted() {
    assert_eq!(asymmetric_algorithm("RS256"), Some(Algorithm::RS256));
    assert_eq!(asymmetric_algorithm("EdDSA"), Some(Algorithm::EdDSA));
    for bad in ["HS256", "none", "rs256", ""] {
        assert_eq!(asymmetric_algorithm(bad), None, "{bad}");
    }
}
