//! Who runs this process and on which host, as the audit trail names them.

/// The invoking user: `SUDO_USER` (the admin behind `sudo`), else the login name (`LOGNAME`,
/// `USER`), else the account of this process's uid, else the uid.
pub fn user() -> String {
    let from_env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    if let Some(user) = from_env("SUDO_USER") {
        return user;
    }
    from_env("LOGNAME")
        .or_else(|| from_env("USER"))
        .or_else(account_name)
        // SAFETY: getuid has no preconditions.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }))
}

/// The name of this process's user account (the password database), if it has one.
fn account_name() -> Option<String> {
    // SAFETY: all-zero is a valid passwd for getpwuid_r to fill in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of pwd's strings.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points into buf, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_str()
        .ok()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// This host's name (`gethostname`), or `unknown`.
pub fn host() -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: buf is valid for buf.len() bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len()) } == 0 {
        buf[buf.len() - 1] = 0;
        // SAFETY: NUL-terminated above.
        if let Ok(name) = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_str() {
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    "unknown".to_string()
}
