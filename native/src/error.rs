//! One crate-wide error type; every message starts with the component that raised it.

/// Status codes shared with `ffi/errors.ts`; keep the two lists in step.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    InvalidArgument = 1,
    BadHandle = 2,
    Shape = 3,
    UnknownModel = 4,
    NotFinite = 5,
    Io = 6,
    Tensor = 7,
    Panic = 8,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    BadHandle(String),
    #[error("{op}: expected {expected}, got {got}")]
    Shape {
        op: &'static str,
        expected: String,
        got: String,
    },
    #[error(
        "unknown model \"{0}\" (expected {names}, or a spec)",
        names = crate::models::builtin::MODEL_NAMES.join(", ")
    )]
    UnknownModel(String),
    #[error("{0}")]
    NotFinite(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::BadHandle(_) => Code::BadHandle,
            Error::Shape { .. } => Code::Shape,
            Error::UnknownModel(_) => Code::UnknownModel,
            Error::NotFinite(_) => Code::NotFinite,
            Error::Io(_) => Code::Io,
            Error::Tensor(_) => Code::Tensor,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::InvalidArgument(format!("json: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `bail!(InvalidArgument, "noise-maps: samples must be > 0, got {n}")`
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::Error::$kind(format!($($arg)*)))
    };
}
