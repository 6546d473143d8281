//! serde_json's reading of a body the scanner rejected: the error then carries serde_json's
//! own message (what it expected, line and column), as it always has. serde_json also has
//! the last word, should it ever accept a body the scanner rejected.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Field, FieldKey};
use crate::LlmError;

/// The top-level object, borrowed from the body.
struct TopLevel<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    out.push((key, value));
                }
                Ok(TopLevel(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The top-level members as [`super::split_top_level`] finds them, or serde_json's error.
pub(super) fn split_top_level(body: &[u8]) -> Result<super::Fields, LlmError> {
    let top: TopLevel<'_> =
        serde_json::from_slice(body).map_err(|e| LlmError::InvalidJson(e.to_string()))?;
    let base = body.as_ptr() as usize;
    Ok(top
        .0
        .into_iter()
        .map(|(key, raw)| {
            let start = raw.get().as_ptr() as usize - base;
            Field {
                key: FieldKey::Unescaped(key.into()),
                value: start..start + raw.get().len(),
            }
        })
        .collect())
}
