//! Creating session files safely under sudo: never following a planted symlink, never
//! overwriting, readable by the invoking user only (mode 0600, owned by SUDO_UID/SUDO_GID).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::SessionError;

/// Creates an empty file at `path` with mode 0600, refusing an existing file or symlink.
pub fn create_private(path: &Path) -> Result<std::fs::File, SessionError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists
                || e.raw_os_error() == Some(libc::ELOOP)
            {
                SessionError::Exists(path.display().to_string())
            } else {
                SessionError::Io(path.display().to_string(), e)
            }
        })?;
    chown_to_invoker(path);
    Ok(file)
}

/// Under sudo, gives `path` to the user who ran sudo. Does nothing otherwise, and never
/// follows a symlink.
pub fn chown_to_invoker(path: &Path) {
    let id = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) else {
        return;
    };
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: a valid NUL-terminated path; lchown does not follow symlinks.
    unsafe {
        libc::lchown(c.as_ptr(), uid, gid);
    }
}

/// Writes `contents` to a new private file (see [`create_private`]).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), SessionError> {
    use std::io::Write;
    let mut f = create_private(path)?;
    f.write_all(contents)
        .map_err(|e| SessionError::Io(path.display().to_string(), e))
}
