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

/// Replaces the file at `path` with `contents`, or creates it: the text goes to a new
/// private file beside it first, which is then renamed over `path`, so a symlink planted at
/// `path` is replaced rather than followed and a crash leaves either the old or the new file.
/// An existing file keeps its mode; a new one gets 0600. Under sudo, the result belongs to
/// the invoking user.
pub fn replace_private(path: &Path, contents: &[u8]) -> Result<(), SessionError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let io = |e| SessionError::Io(path.display().to_string(), e);
    let old_mode = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file())
        .map(|m| m.permissions().mode() & 0o7777);
    let name = path.file_name().map_or_else(
        || std::ffi::OsString::from("file"),
        std::ffi::OsStr::to_owned,
    );
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(&name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut f = create_private(&tmp)?;
    let written = f
        .write_all(contents)
        .and_then(|()| f.sync_all())
        .and_then(|()| match old_mode {
            Some(mode) => f.set_permissions(std::fs::Permissions::from_mode(mode)),
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Writes `contents` to a new private file (see [`create_private`]).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), SessionError> {
    use std::io::Write;
    let mut f = create_private(path)?;
    f.write_all(contents)
        .map_err(|e| SessionError::Io(path.display().to_string(), e))
}
