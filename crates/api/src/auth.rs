//! Bearer-token authentication ([RFC 6750 §2.1](https://www.rfc-editor.org/rfc/rfc6750#section-2.1)).
//!
//! The token is read once from a file. Candidates are compared by their SHA-1 digests with a
//! constant-time equality, so neither the position of the first wrong byte nor the length of
//! the configured token shows in the answer time.

use std::path::Path;

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no token, or one shorter than [`MIN_TOKEN_LEN`].
    #[error("token file {path}: the token must be at least {MIN_TOKEN_LEN} characters")]
    TooShort {
        /// The file.
        path: String,
    },
    /// The token has characters a header cannot carry.
    #[error("token file {path}: the token must be printable ASCII without spaces")]
    BadCharacters {
        /// The file.
        path: String,
    },
}

/// Fewest characters a token may have.
pub const MIN_TOKEN_LEN: usize = 16;

/// The configured bearer token (kept only as a digest).
#[derive(Clone)]
pub struct Token {
    digest: [u8; 20],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

fn digest(s: &[u8]) -> [u8; 20] {
    Sha1::digest(s).into()
}

impl Token {
    /// A token from its text (surrounding whitespace, e.g. a final newline, is ignored).
    pub fn new(text: &str, origin: &str) -> Result<Self, TokenError> {
        let t = text.trim();
        if t.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort {
                path: origin.into(),
            });
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacters {
                path: origin.into(),
            });
        }
        Ok(Self {
            digest: digest(t.as_bytes()),
        })
    }

    /// Reads the token from `path`.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: name.clone(),
            source,
        })?;
        Self::new(&text, &name)
    }

    /// Whether `candidate` is the token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        bool::from(digest(candidate.as_bytes()).ct_eq(&self.digest))
    }

    /// Whether an `Authorization` header value carries the token (`Bearer <token>`; the scheme
    /// is case-insensitive, RFC 7235 §2.1).
    pub fn authorizes(&self, header: Option<&str>) -> bool {
        let Some(h) = header else {
            return false;
        };
        let Some((scheme, rest)) = h.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.matches(rest.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "s3cret-token-0123456789";

    #[test]
    fn only_the_exact_token_is_accepted() {
        let t = Token::new(&format!("{T}\n"), "test").unwrap();
        assert!(t.matches(T));
        assert!(!t.matches("s3cret-token-012345678"));
        assert!(!t.matches("s3cret-token-01234567890"));
        assert!(!t.matches(""));
        assert!(t.authorizes(Some(&format!("Bearer {T}"))));
        assert!(t.authorizes(Some(&format!("bearer {T}"))));
        assert!(!t.authorizes(Some(&format!("Basic {T}"))));
        assert!(!t.authorizes(Some(T)));
        assert!(!t.authorizes(None));
    }

    #[test]
    fn short_or_unprintable_tokens_are_refused() {
        assert!(matches!(
            Token::new("short\n", "f"),
            Err(TokenError::TooShort { .. })
        ));
        assert!(matches!(
            Token::new("0123456789abcdef 01", "f"),
            Err(TokenError::BadCharacters { .. })
        ));
        let e = Token::from_file(Path::new("/nonexistent/pshim6-token")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pshim6-token"), "{e}");
    }
}
