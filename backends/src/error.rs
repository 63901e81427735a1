use std::{error::Error, fmt};

/// What went wrong in a backend, broadly.
///
/// ```
/// use layercake_backends::{BackendError, BackendErrorKind};
/// let error = BackendError::new(BackendErrorKind::Timeout, "GET took 120 ms");
/// assert_eq!(error.kind(), BackendErrorKind::Timeout);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The store could not be reached or refused the operation.
    Unavailable,
    /// The store did not answer in time.
    Timeout,
    /// The stored bytes could not be read back (foreign, truncated or corrupt).
    Corrupt,
    /// An entry exists under the key but holds a value of another type.
    TypeMismatch,
    /// Anything else.
    Other,
    /// The store cannot do what was asked (a pattern over a store that cannot enumerate its
    /// keys, say).
    Unsupported,
}

/// An error from a storage tier.
///
/// Tier errors are values: the engine counts and logs them and treats the operation as a miss,
/// so a failing store never turns a working upstream into a failed request.
///
/// ```
/// use layercake_backends::{BackendError, BackendErrorKind};
///
/// let err = BackendError::new(BackendErrorKind::Timeout, "GET took longer than 50ms");
/// assert_eq!(err.kind(), BackendErrorKind::Timeout);
/// assert_eq!(err.to_string(), "backend timeout: GET took longer than 50ms");
/// ```
#[derive(Debug)]
pub struct BackendError {
    kind: BackendErrorKind,
    source: Box<dyn Error + Send + Sync>,
}

impl BackendError {
    /// An error of `kind` caused by `source` (an error or a message).
    ///
    /// ```
    /// use layercake_backends::{BackendError, BackendErrorKind};
    /// let error = BackendError::new(BackendErrorKind::Unavailable, "connection refused");
    /// assert!(error.to_string().contains("connection refused"));
    /// ```
    pub fn new(kind: BackendErrorKind, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        BackendError {
            kind,
            source: source.into(),
        }
    }

    /// What kind of error this is.
    ///
    /// ```
    /// use layercake_backends::{BackendError, BackendErrorKind};
    /// let error = BackendError::new(BackendErrorKind::Corrupt, "bad checksum");
    /// assert_eq!(error.kind(), BackendErrorKind::Corrupt);
    /// ```
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BackendErrorKind::Unavailable => "unavailable",
            BackendErrorKind::Timeout => "timeout",
            BackendErrorKind::Corrupt => "corrupt entry",
            BackendErrorKind::TypeMismatch => "type mismatch",
            BackendErrorKind::Other => "error",
            BackendErrorKind::Unsupported => "unsupported",
        };
        write!(f, "backend {kind}: {}", self.source)
    }
}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}
