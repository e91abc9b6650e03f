//! The command's one error type: a single line for the user and the exit
//! code that goes with it.

use std::fmt;

/// Exit code of a failed command (bad input, I/O, a refused operation).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of `net redex verify` when it found corruption.
pub const EXIT_CORRUPT: u8 = 3;

/// Why a command failed, as one line, and the process exit code.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A failure with [`EXIT_FAILURE`].
    pub fn new(message: impl fmt::Display) -> Self {
        Self::with_code(message, EXIT_FAILURE)
    }

    /// A failure with a chosen exit code.
    pub fn with_code(message: impl fmt::Display, code: u8) -> Self {
        // One line, whatever the library's message holds.
        let message = message.to_string().replace(['\n', '\r'], " ");
        Self { message, code }
    }

    /// Standard output was closed by its reader (`net redex cat | head`):
    /// not an error, nothing more to say.
    pub fn broken_pipe() -> Self {
        Self {
            message: String::new(),
            code: 0,
        }
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The message (empty for [`CliError::broken_pipe`]).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The command's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Adds what was being done to a library error: `"reading key.seed: No such
/// file or directory"`.
pub trait Context<T> {
    /// Wraps the error as `"{what}: {error}"`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| CliError::new(format!("{what}: {e}")))
    }
}

/// Returns early with a [`CliError`] built like `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::CliError::new(format!($($arg)*)))
    };
}
