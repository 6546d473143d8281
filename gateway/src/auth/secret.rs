//! New key material from the operating system's CSPRNG.

use crate::GatewayError;

/// Prefix of generated API keys (recognisable in secret scanners).
pub const KEY_PREFIX: &str = "sk-dm-";

fn random_hex(bytes: usize) -> Result<String, GatewayError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| GatewayError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

/// A new API key: `sk-dm-` and 256 random bits in hex.
pub fn new_api_key() -> Result<String, GatewayError> {
    Ok(format!("{KEY_PREFIX}{}", random_hex(32)?))
}

/// A new key id: `key_` and 64 random bits in hex (not secret).
pub fn new_key_id() -> Result<String, GatewayError> {
    Ok(format!("key_{}", random_hex(8)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_distinct_and_prefixed() {
        let (a, b) = (new_api_key().unwrap(), new_api_key().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert!(new_key_id().unwrap().starts_with("key_"));
    }
}
