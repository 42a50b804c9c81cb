//! A fake GPU mediator: its admin socket, written from the protocol facts. One request per
//! connection: 16 bytes (`u32` magic 0x56475055, command, param1, param2, little-endian); a
//! request with another magic, or shorter, is closed without an answer; an unknown command gets
//! status 1 and `ERROR: Unknown admin command 0x..`. Every request it got is recorded.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The protocol's magic.
pub const MAGIC: u32 = 0x5647_5055;

/// What the fake answers "show health".
pub const HEALTH: &str = "GPU 0: 61 C, utilisation 37%, memory 2048/8192 MiB, power 95 W, ECC 0, watchdog resets 0, queue 3";

/// A request as received: magic, command, param1, param2.
pub type Request = [u32; 4];

/// A running fake mediator (stopped when dropped).
pub struct FakeMediator {
    /// Its socket.
    pub path: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
    connected: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The connections table for VMs `connected` (by vm_id), with the server sockets after it.
fn connections(connected: &[u32]) -> String {
    let mut text = format!("Active VM connections: {}\n", connected.len());
    if !connected.is_empty() {
        text.push_str("VM ID   FD  Jobs  Since\n");
        for (i, id) in connected.iter().enumerate() {
            text.push_str(&format!(
                "{id:<7} {:<3} {:<5} 2026-11-24 01:0{i}:00\n",
                10 + i,
                3 * i
            ));
        }
    }
    text.push_str("Server sockets:\n  4  /var/vgpu/admin.sock (admin)\n  5  /var/xen/qemu/root-12/tmp/vgpu-mediator.sock");
    text
}

/// What the fake answers a well-formed request: (status, text).
fn answer(command: u32, param1: u32, refuse_reload: bool, connected: &[u32]) -> (u32, String) {
    match command {
        0x10 if param1 == 1 => (
            0,
            "# TYPE vgpu_jobs_total counter\nvgpu_jobs_total 42".into(),
        ),
        0x10 => (0, "Jobs: 42 submitted, 40 completed, 2 rejected".into()),
        0x11 => (0, HEALTH.into()),
        0x12 if refuse_reload => (1, "ERROR: database is locked".into()),
        0x12 => (0, "Config reloaded: 2 VM(s) updated".into()),
        0x15 => (0, connections(connected)),
        other => (1, format!("ERROR: Unknown admin command 0x{other:02x}")),
    }
}

impl FakeMediator {
    /// Serves the socket at `path`; with `refuse_reload`, a reload gets status 1.
    pub fn start(path: &Path, refuse_reload: bool) -> FakeMediator {
        let listener = UnixListener::bind(path).expect("bind the fake mediator");
        listener.set_nonblocking(true).expect("nonblocking");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connected = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, connected, stop) = (requests.clone(), connected.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((mut stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 16];
                    if stream.read_exact(&mut buf).is_err() {
                        continue; // shorter than 16 bytes: closed
                    }
                    let word =
                        |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
                    let request = [word(0), word(4), word(8), word(12)];
                    requests.lock().unwrap().push(request);
                    if request[0] != MAGIC {
                        continue; // another magic: closed without an answer
                    }
                    let now = connected.lock().unwrap().clone();
                    let (status, text) = answer(request[1], request[2], refuse_reload, &now);
                    let mut out = Vec::new();
                    for w in [MAGIC, status, text.len() as u32] {
                        out.extend_from_slice(&w.to_le_bytes());
                    }
                    out.extend_from_slice(text.as_bytes());
                    let _ = stream.write_all(&out);
                }
            })
        };
        FakeMediator {
            path: path.to_path_buf(),
            requests,
            connected,
            stop,
            thread: Some(thread),
        }
    }

    /// From now on the VMs with these vm_ids are connected (none at start).
    pub fn connect(&self, vm_ids: &[u32]) {
        *self.connected.lock().unwrap() = vm_ids.to_vec();
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeMediator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
