//! A real Kafka broker for tests and development, started with the
//! repository's `scripts/kafka` (Apache Kafka from Maven Central, KRaft,
//! loopback only); needs Java 17+ and Maven.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A broker in a directory of its own; stopped, and the directory removed,
/// on drop, whatever happened.
pub struct TestBroker {
    dir: PathBuf,
    bootstrap: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka")
}

fn run_script(command: &str, dir: &Path) -> String {
    let out = Command::new("bash")
        .arg(script())
        .arg(command)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/kafka {command}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/kafka {command} failed ({}):\n{stderr}\nA test broker needs Java 17+ and Maven (see scripts/kafka).",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TestBroker {
    /// Starts a broker in a fresh directory named after `name` and this
    /// process. Panics with the script's output if it cannot start: a test
    /// that needs a broker must not go on without one.
    pub fn start(name: &str) -> TestBroker {
        let dir = std::env::temp_dir().join(format!("eddy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bootstrap = run_script("start", &dir);
        assert!(
            bootstrap.starts_with("127.0.0.1:"),
            "unexpected bootstrap '{bootstrap}'"
        );
        TestBroker { dir, bootstrap }
    }

    /// The broker's directory (its data, logs and state); tests may keep
    /// their own files there, removed with it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker's address, `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Stops the broker, keeping its data for [`restart`](TestBroker::restart).
    pub fn stop(&self) {
        run_script("stop", &self.dir);
    }

    /// Starts the stopped broker again, on the same port with the same data.
    pub fn restart(&self) {
        let again = run_script("start", &self.dir);
        assert_eq!(again, self.bootstrap, "a restarted broker keeps its port");
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg("--dir")
            .arg(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
