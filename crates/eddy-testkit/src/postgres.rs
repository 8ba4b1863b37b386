//! A throwaway PostgreSQL cluster for tests and development: installed
//! from Debian packages when missing, initialised in a temp directory,
//! listening on a free loopback port only, stopped and deleted on drop.
//! Never a mock.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The unprivileged system user that owns the cluster: PostgreSQL refuses
/// to run as root.
const PG_USER: &str = "postgres";

/// How long the server may take to accept connections after `pg_ctl start`;
/// a cold start on a loaded 2-core machine takes a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running throwaway cluster.
pub struct TestPg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl TestPg {
    /// Starts a fresh cluster with a database `eddy`.
    pub fn start() -> TestPg {
        let bin = find_bin_dir();
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "eddy-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).expect("create the cluster's temp dir");
        let as_root = is_root();
        if as_root {
            ensure_user();
            run_ok(Command::new("chown").args(["-R", PG_USER]).arg(&dir));
        }
        let data = dir.join("data");
        let mut initdb = pg_command(&bin, "initdb", as_root);
        initdb.args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ]);
        initdb.arg(&data);
        run_ok(&mut initdb);
        let port = free_port();
        let pg = TestPg { dir, bin, port };
        pg.start_server();
        let mut createdb = Command::new(pg.bin.join("createdb"));
        createdb.args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-p",
            &port.to_string(),
            "eddy",
        ]);
        run_ok(&mut createdb);
        pg
    }

    /// The connection string of the `eddy` database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=eddy connect_timeout=2",
            self.port
        )
    }

    /// Runs SQL through `psql`, failing the test on an error.
    pub fn psql(&self, sql: &str) -> String {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-h", "127.0.0.1", "-U", "postgres", "-d", "eddy", "-At"])
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-p",
                &self.port.to_string(),
                "-c",
                sql,
            ]);
        let out = run_ok(&mut cmd);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server (fast shutdown: open connections are cut, as in an
    /// outage), keeping its data.
    pub fn stop(&self) {
        let mut cmd = pg_command(&self.bin, "pg_ctl", is_root());
        cmd.args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.dir.join("data"));
        run_ok(&mut cmd);
    }

    /// Starts the server again on the same port.
    pub fn start_server(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.join("sock").display()
        );
        let mut cmd = pg_command(&self.bin, "pg_ctl", is_root());
        cmd.args(["start", "-w", "-t", "60", "-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(self.dir.join("data"));
        run_ok(&mut cmd);
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let mut cmd = pg_command(&self.bin, "pg_ctl", is_root());
        cmd.args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"));
        // The server may already be stopped (an outage test); then this fails
        // harmlessly.
        let _ = cmd.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command that runs a PostgreSQL binary, as the unprivileged user when we
/// are root.
fn pg_command(bin: &Path, name: &str, as_root: bool) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", PG_USER, "--"]).arg(bin.join(name));
        cmd
    } else {
        Command::new(bin.join(name))
    }
}

fn ensure_user() {
    let exists = Command::new("id")
        .arg(PG_USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        run_ok(Command::new("useradd").args(["--system", "--no-create-home", PG_USER]));
    }
}

/// The directory holding `initdb` and `pg_ctl`, installing PostgreSQL from
/// Debian packages when none is found.
fn find_bin_dir() -> PathBuf {
    if let Some(dir) = search_bin_dir() {
        return dir;
    }
    run_ok(Command::new("apt-get").arg("update"));
    run_ok(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    );
    search_bin_dir().expect("postgresql was installed but initdb and pg_ctl are not found")
}

fn search_bin_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        // Newest major version first.
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    candidates.push(PathBuf::from("/usr/local/bin"));
    candidates.push(PathBuf::from("/usr/bin"));
    candidates.into_iter().find(|d| {
        ["initdb", "pg_ctl", "psql", "createdb"]
            .iter()
            .all(|b| d.join(b).is_file())
    })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local addr").port()
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
