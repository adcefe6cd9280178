//! What the benchmarks that run the real binary share: free ports, and a PostgreSQL cluster of
//! their own.
// Each bench binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A PostgreSQL cluster of this run's own (initdb in a temporary directory, default settings
/// unless told otherwise), so restarting or reconfiguring it disturbs nobody else. Runs as the
/// `postgres` system user when started as root.
pub struct PrivatePostgres {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    settings: Vec<String>,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A cluster started with these `name=value` server settings besides the defaults.
    pub fn start_with(settings: &[&str]) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .expect("initdb");
        let dir = std::env::temp_dir().join(format!("scimgate-bench-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        as_postgres(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir), false);
        let settings = settings.iter().map(|s| (*s).to_owned()).collect();
        let pg = Self { dir, port: free_port(), bin, settings };
        let data = pg.dir.join("data");
        pg.run("initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.pg_ctl("start");
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let mut command = Command::new(self.bin.join(tool));
        command.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        as_postgres(&mut command, true);
    }

    pub fn pg_ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.log();
        let mut options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        for setting in &self.settings {
            options.push_str(&format!(" -c {setting}"));
        }
        let mut args = vec![action, "-D", data.to_str().unwrap(), "-w", "-l", log.to_str().unwrap()];
        if action != "stop" {
            args.extend(["-o", options.as_str()]);
        } else {
            args.extend(["-m", "fast"]);
        }
        self.run("pg_ctl", &args);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.pg_ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `command` (as the `postgres` user when this process is root), waiting for it.
pub fn as_postgres(command: &mut Command, switch_user: bool) {
    let is_root = running_as_root();
    let status = if switch_user && is_root {
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    } else {
        command.status()
    };
    assert!(status.map(|s| s.success()).unwrap_or(false), "{command:?} failed");
}

/// Whether we run as root, from /proc (no libc call needed).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
