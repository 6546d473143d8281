//! Extracting the presented credential from `Authorization: Bearer …` or `x-api-key`.

use crate::GatewayError;

/// The credential the request carries (trimmed), or why there is none usable.
/// `Authorization` wins over `x-api-key` when both are sent.
pub fn presented<'a>(
    authorization: Option<&'a [u8]>,
    x_api_key: Option<&'a [u8]>,
) -> Result<&'a str, GatewayError> {
    match (authorization, x_api_key) {
        (Some(h), _) => {
            let h = std::str::from_utf8(h)
                .map_err(|_| GatewayError::Unauthorized("malformed Authorization header"))?;
            match h.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
                _ => Err(GatewayError::Unauthorized(
                    "the Authorization header must be `Bearer <API key>`",
                )),
            }
        }
        (None, Some(k)) => Ok(std::str::from_utf8(k)
            .map_err(|_| GatewayError::Unauthorized("malformed x-api-key header"))?
            .trim()),
        (None, None) => Err(GatewayError::Unauthorized(
            "missing API key: send `Authorization: Bearer <API key>`",
        )),
    }
}
