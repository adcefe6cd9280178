//! A mixed IdP workload against the real `scimgate` binary, over loopback, bounded in time.
//!
//! `cargo bench -p scimgate-edge --bench workload -- load`: closed-loop throughput and latency on
//! PostgreSQL and SQLite, and the gateway's memory at rest and under load.
//!
//! `cargo bench -p scimgate-edge --bench workload -- fault`: the same traffic at a steady rate
//! while Redis is stopped and PostgreSQL is restarted (both private instances this run starts and
//! owns), then checks that no acknowledged write was lost, that every refusal during the outage
//! was a SCIM 503 or 429 (no 500, no hang), and how fast the gateway recovered. Exits non-zero when
//! a check fails. `make load` and `make fault` run them; results go into docs/benchmarks.md.
//!
//! `cargo bench -p scimgate-edge --bench workload -- activity`: the `load` runs with the
//! provisioning activity log on and off, alternately (on, off, off, on) on each backend, and the
//! throughput ratio (off against on) of each backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

mod common;
use common::{free_port, wait_for_port, PrivatePostgres};

const SCIM_JSON: &str = "application/scim+json";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let mut redis = Self { port: free_port(), child: None };
        redis.resume();
        redis
    }

    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        assert!(wait_for_port(self.port, Duration::from_secs(10)), "redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

// --- the gateway ------------------------------------------------------------------------------

struct Gateway {
    child: Child,
    base: String,
    token: String,
    database_url: String,
}

impl Gateway {
    fn scimgate(database_url: &str, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .args(args)
            .env("SCIMGATE_DATABASE_URL", database_url)
            .env("SCIMGATE_LOG", "warn")
            .output()
            .expect("run scimgate");
        assert!(output.status.success(), "scimgate {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Start `scimgate serve` with a tenant `load` whose rate limit is out of the way (what is
    /// measured is the gateway, not the limit); its log goes to `log`.
    fn start(database_url: &str, redis_url: Option<&str>, log: &Path) -> Self {
        Self::start_with(database_url, redis_url, log, &[])
    }

    /// [`Gateway::start`] with more settings in the gateway's environment.
    fn start_with(database_url: &str, redis_url: Option<&str>, log: &Path, env: &[(&str, &str)]) -> Self {
        Self::scimgate(database_url, &["migrate"]);
        Self::scimgate(database_url, &["tenant", "create", "load"]);
        Self::scimgate(
            database_url,
            &["tenant", "set", "load", "--rate-limit-per-second", "100000", "--rate-limit-burst", "100000"],
        );
        Self::scimgate(database_url, &["tenant", "set", "load", "--autoprovision", "true"]);
        let token = Self::scimgate(database_url, &["token", "create", "load"]).lines().last().unwrap().to_owned();
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_scimgate"));
        command
            .arg("serve")
            .env("SCIMGATE_DATABASE_URL", database_url)
            .env("SCIMGATE_LISTEN", format!("127.0.0.1:{port}"))
            // Nothing here reads metrics: no second listener to collide with another gateway's.
            .env("SCIMGATE_METRICS_LISTEN", "off")
            .env("SCIMGATE_LOG", "error")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .envs(env.iter().copied());
        if let Some(redis) = redis_url {
            command.env("SCIMGATE_REDIS_URL", redis);
        }
        let child = command.spawn().expect("scimgate serve");
        assert!(wait_for_port(port, Duration::from_secs(30)), "the gateway did not start");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}/scim/v2/load"),
            token,
            database_url: database_url.to_owned(),
        }
    }

    /// Resident and peak memory of the gateway process, in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the workload -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    FindUser,
    CreateUser,
    RenameUser,
    AddMember,
    ReadGroup,
    ReadUser,
}

/// What the gateway acknowledged, to check nothing acknowledged was lost.
#[derive(Default)]
struct Ledger {
    /// user id → (userName, highest acknowledged displayName counter)
    users: HashMap<String, (String, u64)>,
    /// user ids with a write in flight (writes to one user are sequential, so "the last
    /// acknowledged value" is well defined).
    busy: std::collections::HashSet<String>,
    /// (group id, user id) acknowledged as added.
    members: Vec<(String, String)>,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<(Op, Duration)>,
    statuses: HashMap<(Op, u16), u64>,
    /// Answers that break the contract: a 500, an error without a SCIM body, a hang.
    violations: Vec<String>,
    /// (time since start, ok?) of every answer, for the recovery time.
    timeline: Vec<(Duration, bool)>,
}

struct Workload {
    client: reqwest::Client,
    base: String,
    token: String,
    groups: Vec<String>,
    ledger: Mutex<Ledger>,
    tally: Mutex<Tally>,
    counter: AtomicU64,
    started: Instant,
}

impl Workload {
    async fn new(gateway: &Gateway) -> Arc<Self> {
        let client = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).pool_max_idle_per_host(128).build().unwrap();
        let workload = Arc::new(Self {
            client,
            base: gateway.base.clone(),
            token: gateway.token.clone(),
            groups: Vec::new(),
            ledger: Mutex::default(),
            tally: Mutex::default(),
            counter: AtomicU64::new(0),
            started: Instant::now(),
        });
        let mut groups = Vec::new();
        for name in ["Engineering", "Sales", "Support", "Admins"] {
            let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name});
            let (status, value) = workload.send(reqwest::Method::POST, "/Groups", Some(body)).await.unwrap();
            assert_eq!(status, 201, "{value}");
            groups.push(value["id"].as_str().unwrap().to_owned());
        }
        for _ in 0..50 {
            workload.create_user().await;
        }
        let mut workload = Arc::try_unwrap(workload).ok().unwrap();
        workload.groups = groups;
        workload.tally = Mutex::default();
        Arc::new(workload)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", SCIM_JSON).body(body.to_string());
        }
        let response =
            request.send().await.map_err(|e| if e.is_timeout() { "hang".to_owned() } else { e.to_string() })?;
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        let scim_status = value["status"].as_str().and_then(|s| s.parse::<u16>().ok());
        if status >= 400 && !(content_type.starts_with(SCIM_JSON) && scim_status == Some(status)) {
            return Err(format!("{status} without a SCIM error body: {text}"));
        }
        Ok((status, value))
    }

    fn record(&self, op: Op, took: Duration, result: &Result<(u16, Value), String>) {
        let mut tally = self.tally.lock().unwrap();
        let at = self.started.elapsed();
        match result {
            Ok((status, _)) => {
                *tally.statuses.entry((op, *status)).or_default() += 1;
                tally.latencies.push((op, took));
                tally.timeline.push((at, *status < 400));
                if !matches!(status, 200..=299 | 503 | 429) {
                    tally.violations.push(format!("{op:?}: {status}"));
                }
            }
            Err(e) => {
                *tally.statuses.entry((op, 0)).or_default() += 1;
                tally.timeline.push((at, false));
                tally.violations.push(format!("{op:?}: {e}"));
            }
        }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A known user with no write in flight, marked busy; `None` if there is none.
    fn claim_user(&self) -> Option<(String, String)> {
        let mut ledger = self.ledger.lock().unwrap();
        let ids: Vec<String> = ledger.users.keys().filter(|id| !ledger.busy.contains(*id)).cloned().collect();
        if ids.is_empty() {
            return None;
        }
        let id = ids[rand::thread_rng().gen_range(0..ids.len())].clone();
        ledger.busy.insert(id.clone());
        let name = ledger.users[&id].0.clone();
        Some((id, name))
    }

    fn release_user(&self, id: &str) {
        self.ledger.lock().unwrap().busy.remove(id);
    }

    async fn create_user(&self) {
        let name = format!("user-{}-{}@example.com", std::process::id(), self.next());
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true});
        let started = Instant::now();
        let result = self.send(reqwest::Method::POST, "/Users", Some(body)).await;
        self.record(Op::CreateUser, started.elapsed(), &result);
        if let Ok((201, value)) = &result {
            let id = value["id"].as_str().unwrap().to_owned();
            self.ledger.lock().unwrap().users.insert(id, (name, 0));
        }
    }

    async fn one(self: &Arc<Self>) {
        let roll = rand::thread_rng().gen_range(0..100);
        match roll {
            0..=34 => {
                let name = self.claim_user().map(|(id, name)| {
                    self.release_user(&id);
                    name
                });
                let name = name.unwrap_or_else(|| format!("nobody-{}", self.next()));
                let path = format!("/Users?filter=userName%20eq%20%22{}%22", name.replace('@', "%40"));
                let started = Instant::now();
                let result = self.send(reqwest::Method::GET, &path, None).await;
                self.record(Op::FindUser, started.elapsed(), &result);
            }
            35..=49 => self.create_user().await,
            50..=69 => {
                let Some((id, _)) = self.claim_user() else { return };
                let n = self.next();
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "displayName", "value": format!("d-{n:012}")}]});
                let started = Instant::now();
                let result = self.send(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(body)).await;
                self.record(Op::RenameUser, started.elapsed(), &result);
                let mut ledger = self.ledger.lock().unwrap();
                if let Ok((200, _)) = &result {
                    if let Some(user) = ledger.users.get_mut(&id) {
                        user.1 = user.1.max(n);
                    }
                }
                ledger.busy.remove(&id);
            }
            70..=84 => {
                let Some((user, _)) = self.claim_user() else { return };
                let group = self.groups[rand::thread_rng().gen_range(0..self.groups.len())].clone();
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Add", "path": "members", "value": [{"value": user}]}]});
                let started = Instant::now();
                let result = self
                    .send(reqwest::Method::PATCH, &format!("/Groups/{group}?excludedAttributes=members"), Some(body))
                    .await;
                self.record(Op::AddMember, started.elapsed(), &result);
                let mut ledger = self.ledger.lock().unwrap();
                if let Ok((200 | 204, _)) = &result {
                    ledger.members.push((group, user.clone()));
                }
                ledger.busy.remove(&user);
            }
            85..=94 => {
                let group = &self.groups[rand::thread_rng().gen_range(0..self.groups.len())];
                let started = Instant::now();
                let result =
                    self.send(reqwest::Method::GET, &format!("/Groups/{group}?excludedAttributes=members"), None).await;
                self.record(Op::ReadGroup, started.elapsed(), &result);
            }
            _ => {
                let Some((id, _)) = self.claim_user() else { return };
                self.release_user(&id);
                let started = Instant::now();
                let result = self.send(reqwest::Method::GET, &format!("/Users/{id}"), None).await;
                self.record(Op::ReadUser, started.elapsed(), &result);
            }
        }
    }

    /// `concurrency` clients back to back for `duration`.
    async fn closed_loop(self: &Arc<Self>, concurrency: usize, duration: Duration) {
        let deadline = Instant::now() + duration;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let workload = self.clone();
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        workload.one().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }

    /// `rate` requests per second, whatever the answers take (at most 256 in flight).
    async fn open_loop(self: &Arc<Self>, rate: u32, duration: Duration) {
        let permits = Arc::new(tokio::sync::Semaphore::new(256));
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        let deadline = Instant::now() + duration;
        let mut tasks = Vec::new();
        while Instant::now() < deadline {
            tick.tick().await;
            let Ok(permit) = permits.clone().try_acquire_owned() else { continue };
            let workload = self.clone();
            tasks.push(tokio::spawn(async move {
                workload.one().await;
                drop(permit);
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Acknowledged writes that are not there (to be called once the gateway answers again).
    async fn lost_writes(&self) -> Vec<String> {
        let (users, members) = {
            let ledger = self.ledger.lock().unwrap();
            (ledger.users.clone(), ledger.members.clone())
        };
        let mut lost = Vec::new();
        for (id, (name, counter)) in &users {
            let (status, user) = self.retrying(&format!("/Users/{id}")).await;
            if status != 200 {
                lost.push(format!("user {name} ({id}) answered {status}"));
                continue;
            }
            let shown =
                user["displayName"].as_str().and_then(|d| d.strip_prefix("d-")).and_then(|d| d.parse::<u64>().ok());
            if *counter > 0 && shown.unwrap_or(0) < *counter {
                lost.push(format!(
                    "user {id}: acknowledged displayName d-{counter:012}, now {:?}",
                    user["displayName"]
                ));
            }
        }
        let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
        for (group, user) in members {
            by_group.entry(group).or_default().push(user);
        }
        for (group, wanted) in by_group {
            let (status, body) = self.retrying(&format!("/Groups/{group}")).await;
            let present: std::collections::HashSet<&str> = body["members"]
                .as_array()
                .map(|m| m.iter().filter_map(|m| m["value"].as_str()).collect())
                .unwrap_or_default();
            for user in wanted {
                if status != 200 || !present.contains(user.as_str()) {
                    lost.push(format!("member {user} of group {group}"));
                }
            }
        }
        lost
    }

    async fn retrying(&self, path: &str) -> (u16, Value) {
        for _ in 0..60 {
            if let Ok((status, value)) = self.send(reqwest::Method::GET, path, None).await {
                if status != 503 && status != 429 {
                    return (status, value);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        (0, Value::Null)
    }

    fn report(&self, label: &str, elapsed: Duration) -> (f64, Duration, Duration) {
        let tally = self.tally.lock().unwrap();
        let mut all: Vec<Duration> = tally.latencies.iter().map(|(_, d)| *d).collect();
        all.sort();
        let pct = |v: &[Duration], p: f64| {
            v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or_default()
        };
        let rps = tally.latencies.len() as f64 / elapsed.as_secs_f64();
        println!(
            "{label}: {} answers in {:.1} s = {rps:.0} requests/s, p50 {:?}, p99 {:?}",
            all.len(),
            elapsed.as_secs_f64(),
            pct(&all, 0.5),
            pct(&all, 0.99)
        );
        let mut by_op: HashMap<Op, Vec<Duration>> = HashMap::new();
        for (op, d) in &tally.latencies {
            by_op.entry(*op).or_default().push(*d);
        }
        let mut ops: Vec<_> = by_op.into_iter().collect();
        ops.sort_by_key(|(op, _)| *op);
        for (op, mut times) in ops {
            times.sort();
            println!("  {op:?}: {} answers, p50 {:?}, p99 {:?}", times.len(), pct(&times, 0.5), pct(&times, 0.99));
        }
        let mut statuses: Vec<_> = tally.statuses.iter().collect();
        statuses.sort();
        println!("  statuses: {statuses:?}");
        (rps, pct(&all, 0.5), pct(&all, 0.99))
    }
}

// --- the two runs -----------------------------------------------------------------------------

/// One closed-loop run; its requests per second.
async fn load(backend: &str, database_url: &str, seconds: u64, concurrency: usize, env: &[(&str, &str)]) -> f64 {
    let log = std::env::temp_dir().join(format!("scimgate-load-{backend}-{}.log", std::process::id()));
    let gateway = Gateway::start_with(database_url, None, &log, env);
    let workload = Workload::new(&gateway).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (at_rest, _) = gateway.memory();
    let started = Instant::now();
    workload.closed_loop(concurrency, Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed();
    let (after, peak) = gateway.memory();
    let (rps, p50, p99) = workload.report(&format!("{backend}, {concurrency} clients"), elapsed);
    let violations = workload.tally.lock().unwrap().violations.clone();
    println!(
        "| {backend} | {concurrency} | {rps:.0} | {:.1} ms | {:.1} ms | {at_rest:.1} MiB | {peak:.1} MiB (now {after:.1}) | {} |",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:?}");
    let lost = workload.lost_writes().await;
    assert!(lost.is_empty(), "lost writes: {lost:?}");
    let _ = (&gateway.database_url, std::fs::remove_file(&log));
    rps
}

/// Fresh databases for load runs: SQLite files in a directory of this run's, PostgreSQL databases
/// on the test server; all removed when dropped.
struct LoadDatabases {
    dir: PathBuf,
    pg_admin: String,
    created: Vec<String>,
}

impl LoadDatabases {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("scimgate-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pg_admin = std::env::var("SCIMGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        Self { dir, pg_admin, created: Vec::new() }
    }

    fn psql(&self, sql: &str) {
        let status = Command::new("psql").args([self.pg_admin.as_str(), "-qAtc", sql]).status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "psql {sql}");
    }

    /// The URL of a new, empty database of `backend`.
    fn fresh(&mut self, backend: &str) -> String {
        let n = self.created.len();
        let name = format!("scimgate_load_{}_{n}", std::process::id());
        self.created.push(name.clone());
        if backend == "sqlite" {
            return format!("sqlite://{}", self.dir.join(format!("{name}.db")).display());
        }
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("{}/{name}", self.pg_admin.rsplit_once('/').unwrap().0)
    }
}

impl Drop for LoadDatabases {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.created) {
            let _ = Command::new("psql")
                .args([self.pg_admin.as_str(), "-qAtc", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fault(rate: u32) -> bool {
    let postgres = PrivatePostgres::start();
    let mut redis = PrivateRedis::start();
    let log = std::env::temp_dir().join(format!("scimgate-fault-{}.log", std::process::id()));
    let gateway = Gateway::start(&postgres.url(), Some(&format!("redis://127.0.0.1:{}", redis.port)), &log);
    let workload = Workload::new(&gateway).await;
    let runner = {
        let workload = workload.clone();
        tokio::spawn(async move { workload.open_loop(rate, Duration::from_secs(45)).await })
    };
    let t0 = workload.started;
    let at = |label: &str| println!("{:6.1} s  {label}", t0.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(8)).await;
    at("stopping Redis");
    redis.stop();
    tokio::time::sleep(Duration::from_secs(7)).await;
    at("stopping PostgreSQL");
    postgres.pg_ctl("stop");
    let down = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    at("starting PostgreSQL");
    postgres.pg_ctl("start");
    let up = t0.elapsed();
    at("PostgreSQL accepts connections");
    tokio::time::sleep(Duration::from_secs(5)).await;
    at("starting Redis");
    redis.resume();
    runner.await.unwrap();
    at("workload done");

    let elapsed = workload.started.elapsed();
    workload.report(&format!("fault run at {rate} requests/s"), elapsed);
    let (first_ok_after, last_error, refused, violations) = {
        let tally = workload.tally.lock().unwrap();
        (
            tally.timeline.iter().filter(|(t, ok)| *t >= up && *ok).map(|(t, _)| *t).min(),
            tally.timeline.iter().filter(|(t, ok)| *t >= down && !*ok).map(|(t, _)| *t).max(),
            tally.statuses.iter().filter(|((_, s), _)| *s == 503 || *s == 429).map(|(_, n)| n).sum::<u64>(),
            tally.violations.clone(),
        )
    };
    let recovery = first_ok_after.map(|t| t.saturating_sub(up));
    let settled = last_error.map(|t| t.saturating_sub(up));
    println!("refused with 503/429 during the run: {refused}");
    println!("first success {:?} after PostgreSQL was back; last error {:?} after it", recovery, settled);
    let lost = workload.lost_writes().await;
    println!("contract violations (500s, non-SCIM errors, hangs): {}", violations.len());
    for v in violations.iter().take(20) {
        println!("  {v}");
    }
    println!("acknowledged writes lost: {}", lost.len());
    for l in lost.iter().take(20) {
        println!("  {l}");
    }
    let recovered = recovery.is_some_and(|r| r < Duration::from_secs(10));
    println!("recovered within 10 s: {recovered}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let errors = logged.lines().filter(|l| l.contains("ERROR")).count();
    let panics = logged.lines().filter(|l| l.contains("panicked")).count();
    println!("gateway log: {errors} ERROR lines, {panics} panics (full log: {})", log.display());
    if panics > 0 {
        return false;
    }
    violations.is_empty() && lost.is_empty() && recovered
}

fn main() {
    let mode = std::env::args()
        .skip(1)
        .find(|a| a == "load" || a == "fault" || a == "activity")
        .unwrap_or_else(|| "load".into());
    let seconds: u64 = std::env::var("WORKLOAD_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let concurrency: usize = std::env::var("WORKLOAD_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match mode.as_str() {
        "fault" => {
            let rate: u32 = std::env::var("WORKLOAD_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
            let ok = runtime.block_on(fault(rate));
            std::process::exit(if ok { 0 } else { 1 });
        }
        "activity" => {
            println!("| backend | clients | requests/s | p50 | p99 | memory at rest | memory under load | errors |");
            println!("|---|---|---|---|---|---|---|---|");
            let mut databases = LoadDatabases::new();
            let mut ratios = Vec::new();
            for backend in ["postgres", "sqlite"] {
                let (mut on, mut off) = (Vec::new(), Vec::new());
                // On, off, off, on: a drift of the machine over the runs weighs on both alike.
                for recording in [true, false, false, true] {
                    let url = databases.fresh(backend);
                    let setting = if recording { "true" } else { "false" };
                    println!("activity log {setting}:");
                    let env = [("SCIMGATE_ACTIVITY_LOG", setting)];
                    let rps = runtime.block_on(load(backend, &url, seconds, concurrency, &env));
                    if recording {
                        on.push(rps)
                    } else {
                        off.push(rps)
                    }
                }
                let mean = |runs: &[f64]| runs.iter().sum::<f64>() / runs.len() as f64;
                ratios.push((backend, mean(&on), mean(&off)));
            }
            for (backend, on, off) in ratios {
                println!(
                    "{backend}: {on:.0} requests/s recording, {off:.0} not; recording keeps {:.1}% of the throughput",
                    100.0 * on / off
                );
            }
        }
        _ => {
            println!("| backend | clients | requests/s | p50 | p99 | memory at rest | memory under load | errors |");
            println!("|---|---|---|---|---|---|---|---|");
            let mut databases = LoadDatabases::new();
            let postgres = databases.fresh("postgres");
            runtime.block_on(load("postgres", &postgres, seconds, concurrency, &[]));
            let sqlite = databases.fresh("sqlite");
            runtime.block_on(load("sqlite", &sqlite, seconds, concurrency, &[]));
        }
    }
}
