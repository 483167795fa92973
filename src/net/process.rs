//! Process-level chores Mosquitto performs at start: running in the background, the pid
//! file, and dropping root privileges.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// Forks into the background (`-d`). Must run before any thread is started.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: called while the process is single-threaded; daemon(3) forks, lets the parent
    // exit and detaches the child from its terminal.
    let rc = unsafe { libc::daemon(1, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes the process id, without a newline (as Mosquitto's `"%d"`).
pub fn write_pid_file(path: &Path) -> io::Result<()> {
    std::fs::write(path, std::process::id().to_string())
}

/// When started as root, switches to `user` (Mosquitto falls back to `nobody` when the
/// default user `mosquitto` does not exist). `root` keeps root.
pub fn drop_privileges(user: &str) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    if user == "root" {
        log::warn!("Warning: midge should not be run as root/administrator.");
        return Ok(());
    }
    let entry = lookup_user(user).or_else(|| {
        if user == "mosquitto" {
            log::warn!(
                "Warning: Unable to drop privileges to 'mosquitto', trying 'nobody' instead."
            );
            lookup_user("nobody")
        } else {
            None
        }
    });
    let Some((uid, gid, name)) = entry else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("Invalid user '{user}'."),
        ));
    };
    // SAFETY: plain system calls on values obtained from getpwnam; the order (groups, gid,
    // then uid) is the one that still has the rights to make each call.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn lookup_user(user: &str) -> Option<(libc::uid_t, libc::gid_t, CString)> {
    let name = CString::new(user).ok()?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy what we need
    // before any other call could overwrite it (the process is single-threaded here).
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some((uid, gid, name))
}
