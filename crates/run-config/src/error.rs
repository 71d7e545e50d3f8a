//! The one error of configuration loading: a sentence that names the key it is about (and the
//! file), e.g. ``in /etc/pshim6.toml: providers[1].prefix: `2001:db8::/48`: expected ADDR/64``.

use std::fmt::Display;

/// Why a configuration was refused; the text names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Result of configuration loading.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// `err!("key: ...")`: a [`ConfigError`] from a format string.
macro_rules! err {
    ($($t:tt)*) => { $crate::error::ConfigError(format!($($t)*)) };
}

/// `bail!("key: ...")`: returns a [`ConfigError`] from a format string.
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::err!($($t)*)) };
}

pub(crate) use {bail, err};

/// Prefixes an error with what was being read (`context: error`).
pub(crate) trait Context<T> {
    /// `f()` + `": "` + the error.
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| ConfigError(format!("{}: {e}", f())))
    }
}
