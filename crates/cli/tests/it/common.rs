//! Starting and stopping the real binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const WRITE_KEY: &str = "wk_test_write_key_0001";
pub const ADMIN_TOKEN: &str = "pat_test_admin_token_0001";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_prossimo")
}

/// Runs a CLI command against a data directory.
pub fn prossimo(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PROSSIMO_DATABASE")
        .env("PROSSIMO_LOG", "warn")
        .output()
        .expect("run prossimo")
}

/// A command's standard output and error, as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `prossimo serve` on a free port.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(&["--data-dir", data_dir.to_str().expect("utf-8 path")])
    }

    pub fn start_with(store_args: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args(store_args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("PROSSIMO_WRITE_KEY", WRITE_KEY)
            .env("PROSSIMO_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PROSSIMO_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn prossimo serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(
                Instant::now() < deadline,
                "server did not report its address"
            );
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("listening:") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the process to exit, at most `patience`; its status,
    /// or `None` when it was still running then (it is killed).
    #[allow(unsafe_code)] // one libc call, reasoned below
    pub fn terminate(mut self, patience: Duration) -> Option<std::process::ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: sends a signal to our own child process, which has not been reaped.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM could not be sent");
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn kill(mut self) {
        // std's kill is SIGKILL on Unix: no shutdown hook runs.
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// The shared reference data (`../shared/data` beside the repository).
pub fn shared_data(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    assert!(
        path.exists(),
        "reference data {} is missing",
        path.display()
    );
    path
}
