//! Values shaped like the serde-derived structs the gateway used to deserialize, read with
//! the same rules so results do not change.

use super::{ScanError, ScanErrorKind, Scanner};

impl Scanner<'_> {
    /// Reads a value (after whitespace) as serde's derived `Deserialize` reads a struct
    /// whose fields are all `#[serde(default)]`: an object whose members named in `fields`
    /// go to `read` by index (each at most once: a repeat is an error) and whose other
    /// members are skipped, or an array holding the fields in order (fewer is fine, more
    /// is not). `read` must consume exactly the field's value. At most 64 fields.
    pub(crate) fn read_struct(
        &mut self,
        fields: &[&str],
        mut read: impl FnMut(&mut Self, usize) -> Result<(), ScanError>,
    ) -> Result<(), ScanError> {
        match self.peek()? {
            b'{' => {
                self.begin_object()?;
                let (mut first, mut seen) = (true, 0u64);
                while let Some(key) = self.next_key(&mut first)? {
                    let text = key.text(self.bytes);
                    match fields.iter().position(|f| f.as_bytes() == text) {
                        Some(i) if seen & (1 << i) != 0 => {
                            return Err(ScanError {
                                at: key.raw.start,
                                kind: ScanErrorKind::DuplicateField,
                            });
                        }
                        Some(i) => {
                            seen |= 1 << i;
                            read(self, i)?;
                        }
                        None => {
                            self.skip_value()?;
                        }
                    }
                }
                Ok(())
            }
            b'[' => {
                self.begin_array()?;
                let mut first = true;
                for i in 0..fields.len() {
                    if !self.next_element(&mut first)? {
                        return Ok(());
                    }
                    read(self, i)?;
                }
                if self.next_element(&mut first)? {
                    return self.err(ScanErrorKind::Syntax);
                }
                Ok(())
            }
            _ => self.err(ScanErrorKind::Type),
        }
    }
}
