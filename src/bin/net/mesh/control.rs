//! The local control socket of `net mesh up`: a Unix stream socket that
//! takes one JSON request line and answers one JSON line. It lives in a
//! directory only its owner can enter (0700), and is itself 0600.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{CliError, Context, Result};

/// The subdirectory holding the sockets.
const SOCKET_DIR: &str = "net-mesh";

/// Where the socket of the node called `name` is: `DIR/net-mesh/NAME.sock`,
/// with DIR from `--control-dir` or `$XDG_RUNTIME_DIR`.
///
/// # Errors
/// Neither is given, or `name` is not a plain file name.
pub fn socket_path(control_dir: Option<&Path>, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(CliError::new(format!(
            "node name {name:?}: use letters, digits, '-' or '_'"
        )));
    }
    let dir = match control_dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                CliError::new("no control directory: pass --control-dir or set XDG_RUNTIME_DIR")
            })?,
    };
    Ok(dir.join(SOCKET_DIR).join(format!("{name}.sock")))
}

/// Creates the private socket directory, or checks an existing one is ours
/// and closed to everyone else.
fn private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(CliError::new(format!("creating {}: {e}", dir.display()))),
    }
    let meta = fs::symlink_metadata(dir).context(dir.display())?;
    let uid = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(meta.uid());
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(CliError::new(format!(
            "{}: must be a directory owned by this user with mode 0700",
            dir.display()
        )));
    }
    Ok(())
}

/// Binds the socket at `path` (owner-only), replacing a stale one.
///
/// # Errors
/// A live node already answers there, or the socket cannot be made.
pub fn bind(path: &Path) -> Result<UnixListener> {
    let dir = path
        .parent()
        .ok_or_else(|| CliError::new("socket path has no directory"))?;
    private_dir(dir)?;
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(CliError::new(format!(
                "a node already answers on {}; pick another --name",
                path.display()
            )));
        }
        fs::remove_file(path).context(format!("removing stale {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).context(format!("binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .context(format!("restricting {}", path.display()))?;
    Ok(listener)
}

/// Serves requests on `listener` forever, one thread per connection.
/// A request's result, and what to do once the answer is written (a
/// `stop` stops the node only then: stopping first could end the process
/// with the answer half written).
pub struct Answer {
    /// The result sent back.
    pub result: Value,
    /// Runs after the answer went out.
    pub after: Option<Box<dyn FnOnce() + Send>>,
}

impl From<Value> for Answer {
    fn from(result: Value) -> Self {
        Self {
            result,
            after: None,
        }
    }
}

pub fn serve(
    listener: UnixListener,
    handle: impl Fn(&Value) -> Result<Answer> + Send + Sync + 'static,
) {
    let handle = std::sync::Arc::new(handle);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let handle = handle.clone();
        std::thread::spawn(move || {
            let _ = answer(stream, &*handle);
        });
    }
}

fn answer(stream: UnixStream, handle: &dyn Fn(&Value) -> Result<Answer>) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let mut after = None;
    let reply = match serde_json::from_str::<Value>(&line) {
        Ok(request) => match handle(&request) {
            Ok(answer) => {
                after = answer.after;
                json!({"ok": true, "result": answer.result})
            }
            Err(e) => json!({"ok": false, "error": e.message()}),
        },
        Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
    };
    let mut stream = stream;
    let written = writeln!(stream, "{reply}").and_then(|()| stream.flush());
    if let Some(after) = after {
        after();
    }
    written
}

/// Sends `request` to the node at `path` and returns its result.
///
/// # Errors
/// No node answers there, or it answered with an error.
pub fn call(path: &Path, request: &Value, timeout: Duration) -> Result<Value> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        CliError::new(format!(
            "no node answers on {} ({e}); is `net mesh up` running with this --name?",
            path.display()
        ))
    })?;
    stream.set_read_timeout(Some(timeout)).ok();
    writeln!(stream, "{request}").context("sending the request")?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .context("reading the node's answer")?;
    let reply: Value = serde_json::from_str(&line).context("decoding the node's answer")?;
    if reply["ok"] == true {
        Ok(reply["result"].clone())
    } else {
        Err(CliError::new(
            reply["error"]
                .as_str()
                .unwrap_or("the node refused the request"),
        ))
    }
}
