//! `vgpu-admin install [--root DIR]` and `uninstall [--root DIR] [--purge]`: put the binary, the
//! database, the xenopsd hook wrapper and the earlier tool's manual entry point in place. Both
//! are idempotent and print what they did; `--root` puts everything under DIR (tests, packages).

use crate::exit::Failure;
use crate::output;
use crate::store::Store;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The hook wrapper's file name: xenopsd runs the files of the directory in name order.
pub const WRAPPER_NAME: &str = "50-vgpu-admin";

/// Where everything goes under a root, and which paths the files written there name.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The root files are written under (`/` on a host, a staging directory for a package).
    pub root: PathBuf,
    /// The root the hook wrapper and the startup script name in their paths: `/` (a package
    /// staged under `root` is installed at `/`), or `root` itself for a relocated install.
    named_root: PathBuf,
}

impl Layout {
    /// The layout under `root`; with `relocated`, the scripts it writes name the paths under
    /// `root` (an install that runs where it is, as the tests do), else the final ones.
    pub fn new(root: impl Into<PathBuf>, relocated: bool) -> Self {
        let root = root.into();
        let named_root = if relocated {
            root.clone()
        } else {
            PathBuf::from("/")
        };
        Layout { root, named_root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The same layout as the installed files name it.
    fn named(&self) -> Layout {
        Layout {
            root: self.named_root.clone(),
            named_root: self.named_root.clone(),
        }
    }

    /// `/etc/vgpu`.
    pub fn etc(&self) -> PathBuf {
        self.path("etc/vgpu")
    }
    /// `/etc/vgpu/vgpu_config.db`.
    pub fn db(&self) -> PathBuf {
        self.path("etc/vgpu/vgpu_config.db")
    }
    /// `/etc/vgpu/scripts`.
    pub fn scripts(&self) -> PathBuf {
        self.path("etc/vgpu/scripts")
    }
    /// `/usr/local/bin/vgpu-admin`.
    pub fn binary(&self) -> PathBuf {
        self.path("usr/local/bin/vgpu-admin")
    }
    /// `/etc/vgpu/vgpu-admin`, the earlier tool's binary location.
    pub fn seed_link(&self) -> PathBuf {
        self.path("etc/vgpu/vgpu-admin")
    }
    /// `/etc/xapi.d/vm-pre-start/50-vgpu-admin`.
    pub fn wrapper(&self) -> PathBuf {
        self.path("etc/xapi.d/vm-pre-start").join(WRAPPER_NAME)
    }
    /// `/etc/vgpu/vgpu-vm-startup.sh`.
    pub fn startup_script(&self) -> PathBuf {
        self.path("etc/vgpu/vgpu-vm-startup.sh")
    }
    /// `/usr/lib64/xen/bin/qemu-system-i386`, the host's QEMU (an absolute path, also under a
    /// relative root).
    pub fn qemu(&self) -> PathBuf {
        let path = self
            .root
            .join(crate::qemu::DEFAULT_QEMU.trim_start_matches('/'));
        std::path::absolute(&path).unwrap_or(path)
    }
}

/// Asks the host's QEMU which vGPU driver it has and, when the site has not chosen one yet,
/// makes it the site's; says what it found either way. Never fails the install.
fn detect_driver(layout: &Layout, store: &Store) -> Result<(), Failure> {
    use crate::model::Driver;
    let qemu = layout.qemu();
    let setting = store
        .setting("device_driver")?
        .and_then(|d| Driver::parse(&d).ok());
    let current = setting.unwrap_or(Driver::DEFAULT);
    let line = match crate::qemu::vgpu_drivers(&qemu) {
        Err(e) => format!(
            "device driver: {current} ({}; {e})",
            if setting.is_some() {
                "site setting"
            } else {
                "default"
            }
        ),
        Ok(found) => match (found.as_slice(), setting) {
            ([one], None) => {
                store.set_setting("device_driver", one.as_str())?;
                format!(
                    "device driver: {one} (found in {}; saved as the site's driver)",
                    qemu.display()
                )
            }
            ([one], Some(set)) if *one == set => {
                format!(
                    "device driver: {one} (site setting; {} has it)",
                    qemu.display()
                )
            }
            ([one], Some(set)) => format!(
                "warning: the site's device driver is {set}, but {} has only {one}: \
                 run 'vgpu-admin set-device-driver --detect'",
                qemu.display()
            ),
            ([], _) => format!(
                "warning: {} has no vGPU driver (vgpu-stub or vgpu-cuda); device driver: {current}",
                qemu.display()
            ),
            (_, _) => format!(
                "device driver: {current} ({} has both names)",
                qemu.display()
            ),
        },
    };
    output::stdout_line(&line);
    Ok(())
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::failed(format!("cannot {what} {}: {e}", path.display()))
}

/// Quotes a path for /bin/sh; a path holding a single quote is refused.
fn sh_quote(path: &Path) -> Result<String, Failure> {
    let text = path.display().to_string();
    if text.contains('\'') || text.contains('\n') {
        return Err(Failure::usage(format!(
            "refusing to write a script for a path with a quote or newline: {text:?}"
        )));
    }
    Ok(format!("'{text}'"))
}

/// Writes `content` to `path` with `mode` unless it is already so; says what happened.
fn put_file(path: &Path, content: &[u8], mode: u32) -> Result<(), Failure> {
    let same = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
        && std::fs::read(path).is_ok_and(|c| c == content)
        && std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same {
        output::stdout_line(&format!("unchanged {}", path.display()));
        return Ok(());
    }
    let existed = std::fs::symlink_metadata(path).is_ok();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    }
    // Write beside it and rename over it: never through a symlink, never half-written.
    let tmp = path.with_extension("vgpu-admin-new");
    std::fs::write(&tmp, content).map_err(|e| io_err("write", &tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err("set permissions of", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("install", path, e))?;
    let verb = if existed { "updated" } else { "created" };
    output::stdout_line(&format!("{verb} {}", path.display()));
    Ok(())
}

/// Points `link` at `target` (relative), moving aside a regular file found there.
fn put_link(link: &Path, target: &Path) -> Result<(), Failure> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            if std::fs::read_link(link).is_ok_and(|t| t == target) {
                output::stdout_line(&format!("unchanged {}", link.display()));
                return Ok(());
            }
            std::fs::remove_file(link).map_err(|e| io_err("replace", link, e))?;
        }
        Ok(_) => {
            // The earlier tool kept its binary here: keep it, out of the way.
            let aside = link.with_extension("earlier-tool");
            std::fs::rename(link, &aside).map_err(|e| io_err("move aside", link, e))?;
            output::stdout_line(&format!("moved {} to {}", link.display(), aside.display()));
        }
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| io_err("link", link, e))?;
    output::stdout_line(&format!(
        "linked {} -> {}",
        link.display(),
        target.display()
    ));
    Ok(())
}

fn wrapper_text(layout: &Layout) -> Result<String, Failure> {
    Ok(format!(
        "#!/bin/sh\n\
         # vgpu-admin's vm-pre-start hook, installed by 'vgpu-admin install'.\n\
         # xenopsd runs it before every VM start with -vmuuid <uuid> -reason <reason>; it checks\n\
         # the VM's vGPU stub device against the database (see 'vgpu-admin set-hook-policy').\n\
         exec {} --db {} --scripts {} hook vm-pre-start \"$@\"\n",
        sh_quote(&layout.named().binary())?,
        sh_quote(&layout.named().db())?,
        sh_quote(&layout.named().scripts())?
    ))
}

fn startup_text(layout: &Layout) -> Result<String, Failure> {
    Ok(format!(
        "#!/bin/sh\n\
         # vgpu-vm-startup.sh <vm-uuid>: the earlier tool's manual entry point, kept for habit.\n\
         # Checks the VM's vGPU configuration and corrects it for the next boot, like the hook.\n\
         if [ -z \"$1\" ]; then\n\
         \x20   echo \"Usage: $0 <vm-uuid>\" >&2\n\
         \x20   exit 1\n\
         fi\n\
         exec {} --db {} --scripts {} hook vm-pre-start -vmuuid \"$1\" -reason manual\n",
        sh_quote(&layout.named().binary())?,
        sh_quote(&layout.named().db())?,
        sh_quote(&layout.named().scripts())?
    ))
}

/// Which parts `install` puts in place (both on a host; one each in a package's steps).
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    /// The binary and its links, the hook wrapper, the startup script, man pages, completions.
    pub files: bool,
    /// The database (created or migrated) and the device driver asked from QEMU.
    pub database: bool,
}

/// Installs under `layout` the `parts` asked for: the files (the binary and its links, the hook
/// wrapper, the startup script and `docs`: man pages and completions, as path under the root
/// and content) and the database (created or migrated; the host's QEMU asked for its driver).
pub fn install(layout: &Layout, docs: &[(PathBuf, Vec<u8>)], parts: Parts) -> Result<(), Failure> {
    let etc = layout.etc();
    std::fs::create_dir_all(&etc).map_err(|e| io_err("create", &etc, e))?;
    for sub in ["commands", "hooks", "stdlib"] {
        let dir = layout.scripts().join(sub);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io_err("set permissions of", &dir, e))?;
            output::stdout_line(&format!("created {}", dir.display()));
        }
    }
    if parts.database {
        let db = layout.db();
        let existed = db.exists();
        let store = Store::open(&db, true)?;
        let rows = store.count_vms(Default::default())?;
        output::stdout_line(&format!(
            "{} {} (schema version {}, {rows} VMs)",
            if existed { "kept" } else { "created" },
            db.display(),
            crate::store::latest_version()
        ));
        detect_driver(layout, &store)?;
    }
    if !parts.files {
        return Ok(());
    }
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find this program's file: {e}")))?;
    let binary = std::fs::read(&exe).map_err(|e| io_err("read", &exe, e))?;
    put_file(&layout.binary(), &binary, 0o755)?;
    put_link(
        &layout.seed_link(),
        Path::new("../../usr/local/bin/vgpu-admin"),
    )?;
    put_file(&layout.wrapper(), wrapper_text(layout)?.as_bytes(), 0o755)?;
    put_file(
        &layout.startup_script(),
        startup_text(layout)?.as_bytes(),
        0o755,
    )?;
    for (rel, content) in docs {
        put_file(&layout.root.join(rel), content, 0o644)?;
    }
    Ok(())
}

/// Removes what `install` put in place; the database only with `purge`.
pub fn uninstall(layout: &Layout, docs: &[(PathBuf, Vec<u8>)], purge: bool) -> Result<(), Failure> {
    let installed = [
        layout.wrapper(),
        layout.startup_script(),
        layout.seed_link(),
        layout.binary(),
    ];
    for path in installed
        .into_iter()
        .chain(docs.iter().map(|(rel, _)| layout.root.join(rel)))
    {
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {
                std::fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))?;
                output::stdout_line(&format!("removed {}", path.display()));
            }
            Err(_) => output::stdout_line(&format!("absent {}", path.display())),
        }
    }
    let db = layout.db();
    if purge {
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", db.display()));
            if file.exists() {
                std::fs::remove_file(&file).map_err(|e| io_err("remove", &file, e))?;
                output::stdout_line(&format!("removed {}", file.display()));
            }
        }
    } else if db.exists() {
        output::stdout_line(&format!(
            "kept {} (remove it with 'vgpu-admin uninstall --purge')",
            db.display()
        ));
    }
    Ok(())
}
