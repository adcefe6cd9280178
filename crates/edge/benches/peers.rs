//! scimgate beside other SCIM servers, same client, same workloads, alternating in one run.
//!
//! `cargo bench -p scimgate-edge --bench peers -- compare` (what `scripts/bench-peers` and
//! `make bench-peers` run): scimgate on PostgreSQL and SQLite and, when `scripts/bench-peers` could
//! install them, BoxyHQ Polis (`@boxyhq/saml-jackson` behind `scripts/lib/polis-scim.js`, on
//! PostgreSQL) and scim2-server (Python, in memory). PostgreSQL servers run in each condition of
//! `BENCH_CONDITIONS`:
//!
//! - `private`: a cluster this run starts (initdb in a temporary directory, default settings,
//!   autovacuum on, a free port);
//! - `shared`: the machine's PostgreSQL (`PGHOST`/`PGPORT`, default 127.0.0.1:5432) as it is
//!   configured; here autovacuum is off, so tables are never analyzed;
//! - `analyzed`: the shared one with `VACUUM ANALYZE` of the benchmark's databases every 30 s.
//!
//! Workloads, each run for every server before the next starts:
//! W4 the initial sync of `BENCH_USERS` users (a `userName eq` search, then `POST /Users`; 8
//! clients); W1 `GET /Users?filter=userName eq` over them; W2 `POST /Users` with 8 and 32
//! clients; W3 `PATCH /Groups/{id}` adding one member per request (8 clients, the group growing;
//! the `generic` profile answers 204; scimgate again with the `entra` profile, which answers the
//! same 204, and the `okta` one, which answers 200 without `members` as Polis does); then every
//! user is put into one group and W1 runs again. Last, for scimgate only, one-member PATCH
//! latency in a group of 100 and of 100,000 members (seeded in SQL), measured alternately.
//! Resident memory idle and after the run.
//!
//! `cargo bench -p scimgate-edge --bench peers -- statements`: scimgate on a private cluster with
//! `pg_stat_statements` and `auto_explain` and autovacuum off. Per request type and group size
//! (100, 10,000, 100,000 members), without statistics and after `ANALYZE`: statements, rows and
//! PostgreSQL time per request, the costliest statements, and the `EXPLAIN (ANALYZE, BUFFERS)`
//! plan of the slowest statement of one request.
//!
//! Environment: `BENCH_USERS` (default 10000), `BENCH_SECONDS` per timed phase (default 10),
//! `BENCH_FILL_SECONDS` (default 90: how long putting every user into one group may take),
//! `BENCH_CONDITIONS` (default `private,shared`), `BENCH_PEERS` (default
//! `scimgate,polis,scim2`), `BENCH_BIG_GROUP` (default 100000), `SCIMGATE_BIN` (default the
//! binary cargo built), `SCIMGATE_BEFORE_BIN` (another scimgate binary, run beside as
//! `before`), `POLIS_MODULES` and `SCIM2_SERVER` (set by `scripts/bench-peers`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{free_port, rss_mib, wait_for_port, PrivatePostgres};

const SCIM_JSON: &str = "application/scim+json";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_list(key: &str, default: &str) -> Vec<String> {
    std::env::var(key)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// --- PostgreSQL clusters -----------------------------------------------------------------------

/// A PostgreSQL server the benchmark makes databases in: its own, or the machine's.
struct Cluster {
    host: String,
    port: u16,
    private: Option<PrivatePostgres>,
    /// Databases made here, dropped at the end.
    made: Mutex<Vec<String>>,
}

impl Cluster {
    fn private(settings: &[&str]) -> Self {
        let pg = PrivatePostgres::start_with(settings);
        Self { host: "127.0.0.1".into(), port: pg.port, private: Some(pg), made: Mutex::default() }
    }

    fn shared() -> Self {
        Self {
            host: std::env::var("PGHOST").unwrap_or_else(|_| "127.0.0.1".into()),
            port: env_or("PGPORT", 5432),
            private: None,
            made: Mutex::default(),
        }
    }

    fn reachable(&self) -> bool {
        self.try_psql("postgres", "SELECT 1").is_ok()
    }

    fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-h", &self.host, "-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql).unwrap_or_else(|e| panic!("psql on {db}: {e}\n{sql}"))
    }

    fn create_db(&self, prefix: &str) -> String {
        let name = format!("{prefix}_{}_{}", std::process::id(), free_port());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.made.lock().unwrap().push(name.clone());
        name
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@{}:{}/{db}", self.host, self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for db in self.made.lock().unwrap().drain(..) {
            let _ = self.try_psql("postgres", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    }
}

// --- servers -----------------------------------------------------------------------------------

/// Where a server keeps its data, for seeding and `VACUUM ANALYZE`.
#[derive(Clone)]
enum Storage {
    Postgres { cluster: Arc<Cluster>, db: String },
    Sqlite(PathBuf),
    Memory,
}

struct Server {
    label: String,
    child: Child,
    base: String,
    token: String,
    storage: Storage,
    /// scimgate's binary, for its CLI.
    scimgate: Option<(PathBuf, String)>,
    idle_mib: f64,
}

impl Server {
    fn scimgate(label: &str, bin: &Path, storage: Storage, dir: &Path) -> Self {
        let url = match &storage {
            Storage::Postgres { cluster, db } => cluster.url(db),
            Storage::Sqlite(path) => format!("sqlite://{}", path.display()),
            Storage::Memory => unreachable!(),
        };
        let cli = |args: &[&str]| {
            let out = Command::new(bin)
                .args(args)
                .env("SCIMGATE_DATABASE_URL", &url)
                .env("SCIMGATE_LOG", "warn")
                .output()
                .expect("run scimgate");
            assert!(out.status.success(), "scimgate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        cli(&["migrate"]);
        cli(&["tenant", "create", "bench"]);
        cli(&["tenant", "set", "bench", "--rate-limit-per-second", "1000000", "--rate-limit-burst", "1000000"]);
        let token = cli(&["token", "create", "bench"]).lines().last().unwrap().trim().to_owned();
        let port = free_port();
        let child = Command::new(bin)
            .arg("serve")
            .env("SCIMGATE_DATABASE_URL", &url)
            .env("SCIMGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SCIMGATE_METRICS_LISTEN", "off")
            .env("SCIMGATE_LOG", "error")
            .env("SCIMGATE_WEBHOOK_WORKERS", "0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{}.log", label.replace(' ', "-")))).unwrap())
            .spawn()
            .expect("scimgate serve");
        assert!(wait_for_port(port, Duration::from_secs(30)), "{label} did not start");
        Self {
            label: label.into(),
            child,
            base: format!("http://127.0.0.1:{port}/scim/v2/bench"),
            token,
            storage,
            scimgate: Some((bin.to_owned(), url)),
            idle_mib: 0.0,
        }
    }

    fn polis(label: &str, modules: &str, cluster: Arc<Cluster>, dir: &Path) -> Option<Self> {
        let db = cluster.create_db("bench_polis");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/polis-scim.js");
        let out_path = dir.join(format!("{}.out", label.replace(' ', "-")));
        let child = Command::new("node")
            .arg(script)
            .env("POLIS_MODULES", modules)
            .env("POLIS_DB_URL", cluster.url(&db))
            .env("POLIS_PORT", free_port().to_string())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{}.log", label.replace(' ', "-")))).unwrap())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let out = std::fs::read_to_string(&out_path).unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.starts_with("{\"base\"")) {
                let v: Value = serde_json::from_str(line).unwrap();
                return Some(Self {
                    label: label.into(),
                    child,
                    base: v["base"].as_str().unwrap().into(),
                    token: v["token"].as_str().unwrap().into(),
                    storage: Storage::Postgres { cluster, db },
                    scimgate: None,
                    idle_mib: 0.0,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{label}: did not start; see its log in {}", dir.display());
        None
    }

    fn scim2(label: &str, program: &str, dir: &Path) -> Option<Self> {
        let port = free_port();
        let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--bearer-token", &token])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("scim2-server.log")).unwrap())
            .spawn()
            .ok()?;
        if !wait_for_port(port, Duration::from_secs(30)) {
            eprintln!("{label}: did not start");
            return None;
        }
        Some(Self {
            label: label.into(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            token,
            storage: Storage::Memory,
            scimgate: None,
            idle_mib: 0.0,
        })
    }

    fn is_scimgate(&self) -> bool {
        self.scimgate.is_some()
    }

    fn cli(&self, args: &[&str]) {
        if let Some((bin, url)) = &self.scimgate {
            let out = Command::new(bin).args(args).env("SCIMGATE_DATABASE_URL", url).output().unwrap();
            assert!(out.status.success(), "scimgate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    fn rss(&self) -> f64 {
        rss_mib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the client --------------------------------------------------------------------------------

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(server: &Server) -> Self {
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(120)).pool_max_idle_per_host(64).build().unwrap();
        Self { http, base: server.base.clone(), token: server.token.clone() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", SCIM_JSON).body(body.to_string());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 300 {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>()));
        }
        Ok((status, value))
    }

    async fn find_user(&self, name: &str) -> Result<u64, String> {
        let path = format!("/Users?filter=userName%20eq%20%22{}%22", name.replace('@', "%40"));
        let (_, v) = self.send(reqwest::Method::GET, &path, None).await?;
        Ok(v["totalResults"].as_u64().unwrap_or(0))
    }

    async fn create_user(&self, name: &str) -> Result<String, String> {
        let body = json!({"schemas": [USER], "userName": name, "active": true,
            "name": {"givenName": "Bench", "familyName": name},
            "emails": [{"value": name, "type": "work", "primary": true}]});
        let (_, v) = self.send(reqwest::Method::POST, "/Users", Some(&body)).await?;
        v["id"].as_str().map(str::to_owned).ok_or_else(|| format!("no id in {v}"))
    }

    async fn create_group(&self, name: &str) -> String {
        let body = json!({"schemas": [GROUP], "displayName": name});
        let (_, v) = self.send(reqwest::Method::POST, "/Groups", Some(&body)).await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    async fn add_members(&self, group: &str, ids: &[String]) -> Result<(), String> {
        let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": members}]});
        self.send(reqwest::Method::PATCH, &format!("/Groups/{group}"), Some(&body)).await.map(|_| ())
    }
}

// --- measuring ---------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// One phase's outcome.
#[derive(Clone, Copy, Default)]
struct Outcome {
    rate: f64,
    p50_ms: f64,
    errors: u64,
}

impl Outcome {
    fn cell(&self) -> String {
        if self.rate == 0.0 {
            return "—".into();
        }
        let errors = if self.errors > 0 { format!(", {} errors", self.errors) } else { String::new() };
        format!("{:.0}/s (p50 {:.1} ms{errors})", self.rate, self.p50_ms)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `clients` closed loops calling `one(n)` with a shared counter, until `deadline` passes or
/// `one` says there is no more work (`None`).
async fn closed_loop<F, Fut>(clients: usize, limit: Duration, one: F) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<Result<(), String>>> + Send,
{
    let one = Arc::new(one);
    let counter = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (one, counter, tally) = (one.clone(), counter.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let Some(result) = one(n).await else { break };
                let took = t.elapsed();
                let mut tally = tally.lock().unwrap();
                match result {
                    Ok(()) => tally.latencies.push(took),
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut tally = std::mem::take(&mut *tally.lock().unwrap());
    if let Some(e) = &tally.first_error {
        eprintln!("    first error: {e}");
    }
    tally.latencies.sort();
    Outcome {
        rate: tally.latencies.len() as f64 / elapsed,
        p50_ms: percentile(&tally.latencies, 0.5),
        errors: tally.errors,
    }
}

/// What one server went through, row by row.
#[derive(Default)]
struct Results {
    cells: BTreeMap<(usize, String), String>,
    rates: BTreeMap<(usize, String), f64>,
}

/// The row of [`ROWS`] for W3 with the generic profile, the only one peers run.
const W3_GENERIC: usize = 4;
/// Rows of [`ROWS`] measured for scimgate only, as other IdP profiles: their ratio is to the
/// peer's generic W3.
const W3_ENTRA: usize = 5;
const W3_OKTA: usize = 6;

const ROWS: &[&str] = &[
    "W4 initial sync (search + POST /Users), 8 clients",
    "W1 GET /Users?filter=userName eq, 8 clients",
    "W2 POST /Users, 8 clients",
    "W2 POST /Users, 32 clients",
    "W3 PATCH /Groups add one member, 8 clients (generic profile: 204)",
    "W3 the same, entra profile (204 too; ratio to Polis's W3)",
    "W3 the same, okta profile (200 without members, as Polis answers; ratio to Polis's W3)",
    "W1 again, every user in one group",
    "resident memory idle → after (MiB)",
];

impl Results {
    fn put(&mut self, row: usize, label: &str, outcome: Outcome) {
        self.cells.insert((row, label.to_owned()), outcome.cell());
        self.rates.insert((row, label.to_owned()), outcome.rate);
    }
}

/// The users of the run, shared by every phase of one server.
struct Pool {
    names: Vec<String>,
    ids: Mutex<Vec<String>>,
    /// Next user to add to a W3 group (modulo the users).
    next_member: AtomicUsize,
}

fn user_name(i: usize) -> String {
    format!("w4-{i:06}@example.com")
}

async fn run_compare() {
    let users: usize = env_or("BENCH_USERS", 10_000);
    let seconds = Duration::from_secs(env_or("BENCH_SECONDS", 10));
    let conditions = env_list("BENCH_CONDITIONS", "private,shared");
    let peers = env_list("BENCH_PEERS", "scimgate,polis,scim2");
    let big: usize = env_or("BENCH_BIG_GROUP", 100_000);
    // The longest any server may take to put every user into one group (Polis adds members one
    // by one).
    let fill = Duration::from_secs(env_or("BENCH_FILL_SECONDS", 90));
    let dir = std::env::temp_dir().join(format!("scimgate-bench-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = std::env::var("SCIMGATE_BIN").map(PathBuf::from).unwrap_or(PathBuf::from(env!("CARGO_BIN_EXE_scimgate")));
    let before = std::env::var("SCIMGATE_BEFORE_BIN").ok().map(PathBuf::from);

    // Servers, in the order of the table's columns.
    let mut servers: Vec<Server> = Vec::new();
    let mut analyzed: Vec<Storage> = Vec::new();
    let mut clusters: Vec<Arc<Cluster>> = Vec::new();
    for condition in &conditions {
        let cluster = match condition.as_str() {
            "private" => Arc::new(Cluster::private(&[])),
            "shared" | "analyzed" => Arc::new(Cluster::shared()),
            other => panic!("unknown condition {other}"),
        };
        if !cluster.reachable() {
            eprintln!("PostgreSQL ({condition}) not reachable: skipped");
            continue;
        }
        clusters.push(cluster.clone());
        let tag = match condition.as_str() {
            "private" => "PG own",
            "shared" => "PG shared",
            _ => "PG shared+analyze",
        };
        let mut made = Vec::new();
        if peers.iter().any(|p| p == "scimgate") {
            let db = cluster.create_db("bench_scimgate");
            let storage = Storage::Postgres { cluster: cluster.clone(), db };
            made.push(Server::scimgate(&format!("scimgate {tag}"), &bin, storage, &dir));
            if let Some(before) = &before {
                let db = cluster.create_db("bench_before");
                let storage = Storage::Postgres { cluster: cluster.clone(), db };
                made.push(Server::scimgate(&format!("before {tag}"), before, storage, &dir));
            }
        }
        if peers.iter().any(|p| p == "polis") {
            match std::env::var("POLIS_MODULES") {
                Ok(modules) => made.extend(Server::polis(&format!("Polis {tag}"), &modules, cluster.clone(), &dir)),
                Err(_) => eprintln!("Polis: not installed (POLIS_MODULES unset): skipped"),
            }
        }
        if condition == "analyzed" {
            analyzed.extend(made.iter().map(|s| s.storage.clone()));
        }
        servers.extend(made);
    }
    if peers.iter().any(|p| p == "scimgate") {
        servers.push(Server::scimgate("scimgate SQLite", &bin, Storage::Sqlite(dir.join("bench.db")), &dir));
        if let Some(before) = &before {
            servers.push(Server::scimgate("before SQLite", before, Storage::Sqlite(dir.join("before.db")), &dir));
        }
    }
    if peers.iter().any(|p| p == "scim2") {
        match std::env::var("SCIM2_SERVER") {
            Ok(program) => servers.extend(Server::scim2("scim2-server", &program, &dir)),
            Err(_) => eprintln!("scim2-server: not installed (SCIM2_SERVER unset): skipped"),
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    for server in &mut servers {
        server.idle_mib = server.rss();
    }

    // Condition B: VACUUM ANALYZE every 30 s, as autovacuum would.
    let stop = Arc::new(AtomicBool::new(false));
    let vacuum = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if last.elapsed() >= Duration::from_secs(30) {
                    for storage in &analyzed {
                        if let Storage::Postgres { cluster, db } = storage {
                            let _ = cluster.try_psql(db, "VACUUM ANALYZE");
                        }
                    }
                    last = Instant::now();
                }
            }
        })
    };

    let pools: Vec<Arc<Pool>> = servers
        .iter()
        .map(|_| {
            Arc::new(Pool {
                names: (0..users).map(user_name).collect(),
                ids: Mutex::default(),
                next_member: AtomicUsize::new(0),
            })
        })
        .collect();
    let mut results = Results::default();

    // W4: initial sync.
    for (server, pool) in servers.iter().zip(&pools) {
        let client = Client::new(server);
        eprintln!("W4 {} ({users} users)", server.label);
        let (client, p) = (client.clone(), pool.clone());
        let outcome = closed_loop(8, Duration::from_secs(3600), move |n| {
            let (client, p) = (client.clone(), p.clone());
            async move {
                let name = p.names.get(usize::try_from(n).ok()?)?.clone();
                Some(
                    async {
                        if client.find_user(&name).await? != 0 {
                            return Err(format!("{name} exists already"));
                        }
                        let id = client.create_user(&name).await?;
                        p.ids.lock().unwrap().push(id);
                        Ok(())
                    }
                    .await,
                )
            }
        })
        .await;
        results.put(0, &server.label, outcome);
    }

    // W1: search by userName.
    let w1 = |row: usize| {
        let servers = &servers;
        let pools = &pools;
        async move {
            let mut out = Vec::new();
            for (server, pool) in servers.iter().zip(pools) {
                eprintln!("W1 {} (row {row})", server.label);
                let (client, p) = (Client::new(server), pool.clone());
                let outcome = closed_loop(8, seconds, move |n| {
                    let (client, p) = (client.clone(), p.clone());
                    async move {
                        let name = &p.names[(n as usize * 7919) % p.names.len()];
                        Some(match client.find_user(name).await {
                            Ok(1) => Ok(()),
                            Ok(k) => Err(format!("{name}: {k} results")),
                            Err(e) => Err(e),
                        })
                    }
                })
                .await;
                out.push((server.label.clone(), outcome));
            }
            out
        }
    };
    for (label, outcome) in w1(1).await {
        results.put(1, &label, outcome);
    }

    // W2: user creation at 8 and 32 clients.
    for (row, clients) in [(2usize, 8usize), (3, 32)] {
        for server in &servers {
            eprintln!("W2 {} ({clients} clients)", server.label);
            let client = Client::new(server);
            let outcome = closed_loop(clients, seconds, move |n| {
                let client = client.clone();
                async move { Some(client.create_user(&format!("w2-{clients}-{n:07}@example.com")).await.map(|_| ())) }
            })
            .await;
            results.put(row, &server.label, outcome);
        }
    }

    // W3: one member per PATCH into a growing group; scimgate again as an Entra tenant and as
    // an Okta one.
    for (row, profile) in [(W3_GENERIC, "generic"), (W3_ENTRA, "entra"), (W3_OKTA, "okta")] {
        for (server, pool) in servers.iter().zip(&pools) {
            if profile != "generic" && !server.is_scimgate() {
                continue;
            }
            server.cli(&["tenant", "set", "bench", "--idp-profile", profile]);
            let client = Client::new(server);
            let group = client.create_group(&format!("w3-{profile}")).await;
            eprintln!("W3 {} ({profile})", server.label);
            let (c, p) = (client.clone(), pool.clone());
            let outcome = closed_loop(8, seconds, move |_| {
                let (client, p, group) = (c.clone(), p.clone(), group.clone());
                async move {
                    // Users not yet in a W3 group first; once every user is in one, around again
                    // (the three W3 phases together can take more adds than there are users).
                    let i = p.next_member.fetch_add(1, Ordering::Relaxed);
                    let id = {
                        let ids = p.ids.lock().unwrap();
                        ids.get(i % ids.len().max(1)).cloned()?
                    };
                    Some(client.add_members(&group, &[id]).await)
                }
            })
            .await;
            server.cli(&["tenant", "set", "bench", "--idp-profile", "generic"]);
            results.put(row, &server.label, outcome);
        }
    }

    // Every user into one group, then W1 again.
    for (server, pool) in servers.iter().zip(&pools) {
        let client = Client::new(server);
        let group = client.create_group("everyone").await;
        let ids = pool.ids.lock().unwrap().clone();
        let started = Instant::now();
        let mut added = 0;
        for chunk in ids.chunks(500) {
            if started.elapsed() > fill {
                break;
            }
            match client.add_members(&group, chunk).await {
                Ok(()) => added += chunk.len(),
                Err(e) => eprintln!("{}: adding 500 members: {e}", server.label),
            }
        }
        eprintln!("{}: {added} users into one group in {:.1} s", server.label, started.elapsed().as_secs_f64());
        results.cells.insert((7, format!("{}#size", server.label)), added.to_string());
    }
    for (label, outcome) in w1(7).await {
        results.put(7, &label, outcome);
    }
    for server in &servers {
        results.cells.insert((8, server.label.clone()), format!("{:.0} → {:.0}", server.idle_mib, server.rss()));
    }

    // One-member PATCH latency against group size, scimgate only.
    let mut sizes = Vec::new();
    for (server, pool) in servers.iter().zip(&pools) {
        if !server.is_scimgate() || matches!(server.storage, Storage::Memory) {
            continue;
        }
        server.cli(&["tenant", "set", "bench", "--idp-profile", "entra"]);
        let client = Client::new(server);
        let small = client.create_group("size-small").await;
        let large = client.create_group("size-large").await;
        seed_members(&server.storage, &small, 100, "s");
        seed_members(&server.storage, &large, big, "l");
        let ids = pool.ids.lock().unwrap().clone();
        let mut taken = pool.next_member.load(Ordering::Relaxed);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            for (group, into) in [(&small, &mut a), (&large, &mut b)] {
                let Some(id) = ids.get(taken % ids.len()) else { break };
                taken += 1;
                let t = Instant::now();
                if client.add_members(group, std::slice::from_ref(id)).await.is_ok() {
                    into.push(t.elapsed());
                }
            }
        }
        server.cli(&["tenant", "set", "bench", "--idp-profile", "generic"]);
        a.sort();
        b.sort();
        sizes.push((server.label.clone(), percentile(&a, 0.5), percentile(&b, 0.5)));
    }

    stop.store(true, Ordering::Relaxed);
    vacuum.join().unwrap();
    print_table(&servers, &results, users, seconds);
    if !sizes.is_empty() {
        println!("\nOne-member PATCH (entra profile, 1 client, alternating, 100 each), p50:\n");
        println!("| Server | 100 members | {big} members | ratio |");
        println!("|---|---|---|---|");
        for (label, small, large) in sizes {
            println!("| {label} | {small:.2} ms | {large:.2} ms | {:.2}x |", large / small.max(0.001));
        }
    }
    drop(servers);
    drop(clusters);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` users made in SQL and put into `group` (a group of the `bench` tenant).
fn seed_members(storage: &Storage, group: &str, n: usize, prefix: &str) {
    let user_data = format!(r#"{{"schemas": ["{USER}"], "userName": "seed", "active": true}}"#);
    match storage {
        Storage::Postgres { cluster, db } => {
            let sql = format!(
                "WITH t AS (SELECT id FROM tenants WHERE name = 'bench') \
                 INSERT INTO users (tenant_id, id, user_name, user_name_lower, active, data, version, created_at, updated_at) \
                 SELECT t.id, '{prefix}-' || g, '{prefix}-' || g, '{prefix}-' || g, TRUE, '{user_data}'::jsonb, 1, 0, 0 \
                 FROM t, generate_series(1, {n}) AS g; \
                 INSERT INTO group_members (tenant_id, group_id, member_id, member_type) \
                 SELECT (SELECT id FROM tenants WHERE name = 'bench'), '{group}', '{prefix}-' || g, 'User' \
                 FROM generate_series(1, {n}) AS g"
            );
            cluster.psql(db, &sql);
        }
        Storage::Sqlite(path) => {
            let sql = format!(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
                 INSERT INTO users (tenant_id, id, user_name, user_name_lower, active, data, version, created_at, updated_at) \
                 SELECT (SELECT id FROM tenants WHERE name = 'bench'), '{prefix}-' || n, '{prefix}-' || n, '{prefix}-' || n, 1, '{user_data}', 1, 0, 0 FROM g; \
                 WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
                 INSERT INTO group_members (tenant_id, group_id, member_id, member_type) \
                 SELECT (SELECT id FROM tenants WHERE name = 'bench'), '{group}', '{prefix}-' || n, 'User' FROM g;"
            );
            let out = Command::new("sqlite3").arg(path).arg(&sql).output().expect("sqlite3");
            assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
        }
        Storage::Memory => {}
    }
}

fn print_table(servers: &[Server], results: &Results, users: usize, seconds: Duration) {
    println!(
        "\n{users} users, {} s per timed phase; requests/s (p50). Ratios: scimgate / Polis on the same PostgreSQL.\n",
        seconds.as_secs()
    );
    let mut header = String::from("| Workload |");
    let mut rule = String::from("|---|");
    for s in servers {
        header.push_str(&format!(" {} |", s.label));
        rule.push_str("---|");
    }
    // Ratio columns: each scimgate PostgreSQL server against the Polis of its condition.
    let pairs: Vec<(String, String)> = servers
        .iter()
        .filter(|s| s.label.starts_with("scimgate PG"))
        .filter_map(|s| {
            let polis = s.label.replacen("scimgate", "Polis", 1);
            servers.iter().any(|p| p.label == polis).then(|| (s.label.clone(), polis))
        })
        .collect();
    for (s, _) in &pairs {
        header.push_str(&format!(" {} / Polis |", s.trim_start_matches("scimgate ")));
        rule.push_str("---|");
    }
    let befores: Vec<(String, String)> = servers
        .iter()
        .filter(|s| s.label.starts_with("before "))
        .map(|s| (s.label.replacen("before", "scimgate", 1), s.label.clone()))
        .collect();
    for (s, _) in &befores {
        header.push_str(&format!(" {} after / before |", s.trim_start_matches("scimgate ")));
        rule.push_str("---|");
    }
    println!("{header}\n{rule}");
    for (row, name) in ROWS.iter().enumerate() {
        let mut line = format!("| {name} |");
        for s in servers {
            let cell = results.cells.get(&(row, s.label.clone())).map_or("—", String::as_str);
            match results.cells.get(&(row, format!("{}#size", s.label))) {
                Some(size) => line.push_str(&format!(" {cell}, {size} members |")),
                None => line.push_str(&format!(" {cell} |")),
            }
        }
        let peer_row = if matches!(row, W3_ENTRA | W3_OKTA) { W3_GENERIC } else { row };
        let compared = pairs.iter().map(|(a, b)| (a, b, peer_row)).chain(befores.iter().map(|(a, b)| (a, b, row)));
        for (a, b, b_row) in compared {
            let ratio = match (results.rates.get(&(row, a.clone())), results.rates.get(&(b_row, b.clone()))) {
                (Some(x), Some(y)) if *y > 0.0 => format!("{:.2}x", x / y),
                _ => "—".into(),
            };
            line.push_str(&format!(" {ratio} |"));
        }
        println!("{line}");
    }
}

// --- per statement -----------------------------------------------------------------------------

async fn run_statements() {
    let cluster = Arc::new(Cluster::private(&[
        "shared_preload_libraries=pg_stat_statements,auto_explain",
        "pg_stat_statements.track=all",
        "autovacuum=off",
        "auto_explain.log_analyze=on",
        "auto_explain.log_buffers=on",
        // auto_explain.log_min_duration stays at its default (off) here: set on the command
        // line, ALTER SYSTEM could not switch it on for the one request explained.
        "auto_explain.log_nested_statements=on",
    ]));
    let requests: usize = env_or("BENCH_REQUESTS", 50);
    let dir = std::env::temp_dir().join(format!("scimgate-bench-statements-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = std::env::var("SCIMGATE_BIN").map(PathBuf::from).unwrap_or(PathBuf::from(env!("CARGO_BIN_EXE_scimgate")));
    let db = cluster.create_db("bench_statements");
    cluster.psql(&db, "CREATE EXTENSION pg_stat_statements");
    let storage = Storage::Postgres { cluster: cluster.clone(), db: db.clone() };
    let server = Server::scimgate("scimgate", &bin, storage.clone(), &dir);
    let client = Client::new(&server);
    let sizes = [100usize, 10_000, 100_000];
    let mut groups = Vec::new();
    for size in sizes {
        let group = client.create_group(&format!("size-{size}")).await;
        seed_members(&storage, &group, size, &format!("m{size}"));
        groups.push((size, group));
    }
    // Users to add, made over HTTP.
    let mut fresh = Vec::new();
    for i in 0..(requests * 8 + 10) {
        fresh.push(client.create_user(&format!("fresh-{i:05}@example.com")).await.unwrap());
    }
    let fresh = Arc::new(fresh);
    let next = Arc::new(AtomicUsize::new(0));
    println!("\n{requests} requests of each kind, one at a time; PostgreSQL's own figures (pg_stat_statements).");
    let counter = Arc::new(AtomicUsize::new(0));
    for stats in ["no statistics", "after ANALYZE"] {
        if stats == "after ANALYZE" {
            cluster.psql(&db, "ANALYZE");
        }
        println!("\n### {stats}\n");
        println!("| Request | statements | rows | PostgreSQL time | costliest statements (ms per call) |");
        println!("|---|---|---|---|---|");
        // Each request kind with the IdP profile its tenant has while it runs.
        let mut cases: Vec<(String, &str, MakeRequest)> = Vec::new();
        {
            let c = counter.clone();
            cases.push((
                "POST /Users".into(),
                "generic",
                Box::new(move |_| Request::CreateUser(format!("s-{}@example.com", c.fetch_add(1, Ordering::Relaxed)))),
            ));
        }
        cases.push((
            "GET /Users?filter=userName eq".into(),
            "generic",
            Box::new(|i| Request::FindUser(format!("fresh-{:05}@example.com", i % 8))),
        ));
        // The two answers a group PATCH gets: 200 without members (okta), 204 (entra, generic).
        for profile in ["okta", "entra"] {
            for (size, group) in &groups {
                let (group, fresh, next) = (group.clone(), fresh.clone(), next.clone());
                let profile_owned = profile.to_owned();
                cases.push((
                    format!("PATCH add one member, {size} members, {profile}"),
                    profile,
                    Box::new(move |_| {
                        let i = next.fetch_add(1, Ordering::Relaxed) % fresh.len();
                        Request::AddMember {
                            group: group.clone(),
                            user: fresh[i].clone(),
                            profile: profile_owned.clone(),
                        }
                    }),
                ));
            }
        }
        let mut profile_now = "generic";
        for (name, wanted, make) in &cases {
            if *wanted != profile_now {
                server.cli(&["tenant", "set", "bench", "--idp-profile", wanted]);
                profile_now = wanted;
            }
            // Warm the statement caches, then count.
            for i in 0..3 {
                make(i).send(&client).await;
            }
            cluster.psql(&db, "SELECT pg_stat_statements_reset()");
            for i in 0..requests {
                make(i).send(&client).await;
            }
            let rows = cluster.psql(
                &db,
                "SELECT calls, rows, round(total_exec_time::numeric, 3), round(mean_exec_time::numeric, 3), \
                 regexp_replace(left(query, 90), '\\s+', ' ', 'g') FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC",
            );
            let (mut calls, mut touched, mut ms) = (0.0, 0.0, 0.0);
            let mut top = Vec::new();
            for line in rows.lines() {
                let f: Vec<&str> = line.splitn(5, '|').collect();
                if f.len() < 5 {
                    continue;
                }
                calls += f[0].parse::<f64>().unwrap_or(0.0);
                touched += f[1].parse::<f64>().unwrap_or(0.0);
                ms += f[2].parse::<f64>().unwrap_or(0.0);
                if top.len() < 3 {
                    top.push(format!("`{}…` {}", f[4].replace('|', "¦"), f[3]));
                }
            }
            let n = requests as f64;
            println!("| {name} | {:.1} | {:.1} | {:.2} ms | {} |", calls / n, touched / n, ms / n, top.join("; "));
        }
        // Plans of the slowest statement of one request per group size.
        if profile_now != "entra" {
            server.cli(&["tenant", "set", "bench", "--idp-profile", "entra"]);
        }
        for (size, group) in &groups {
            let log = cluster.private.as_ref().unwrap().log();
            let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            cluster.psql(&db, "ALTER SYSTEM SET auto_explain.log_min_duration = 0");
            cluster.psql(&db, "SELECT pg_reload_conf()");
            std::thread::sleep(Duration::from_millis(300));
            let i = next.fetch_add(1, Ordering::Relaxed) % fresh.len();
            Request::AddMember { group: group.clone(), user: fresh[i].clone(), profile: "entra".into() }
                .send(&client)
                .await;
            cluster.psql(&db, "ALTER SYSTEM RESET auto_explain.log_min_duration");
            cluster.psql(&db, "SELECT pg_reload_conf()");
            let text = std::fs::read(&log).unwrap_or_default();
            let text = String::from_utf8_lossy(&text[usize::try_from(offset).unwrap().min(text.len())..]).into_owned();
            let mut plans: Vec<(f64, String)> = Vec::new();
            for block in text.split("LOG:  duration: ").skip(1) {
                let ms: f64 = block.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
                let plan: Vec<&str> =
                    block.lines().skip(1).take_while(|l| l.starts_with(['\t', ' '])).take(40).collect();
                let plan = plan.join("\n");
                // The statements of this benchmark's own psql sessions.
                if !plan.contains("pg_reload_conf") {
                    plans.push((ms, plan));
                }
            }
            plans.sort_by(|a, b| b.0.total_cmp(&a.0));
            let total: f64 = plans.iter().map(|p| p.0).sum();
            println!("\nSlowest statement of one PATCH add, {size} members, {stats} ({} statements, {total:.2} ms in all):\n", plans.len());
            if let Some((ms, plan)) = plans.first() {
                println!("```\n-- {ms:.3} ms\n{plan}\n```");
            }
        }
        server.cli(&["tenant", "set", "bench", "--idp-profile", "generic"]);
    }
    drop(server);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `i`-th request of one kind.
type MakeRequest = Box<dyn Fn(usize) -> Request>;

enum Request {
    CreateUser(String),
    FindUser(String),
    AddMember { group: String, user: String, profile: String },
}

impl Request {
    async fn send(self, client: &Client) {
        let result = match &self {
            Request::CreateUser(name) => client.create_user(name).await.map(|_| ()),
            Request::FindUser(name) => client.find_user(name).await.map(|_| ()),
            Request::AddMember { group, user, .. } => client.add_members(group, std::slice::from_ref(user)).await,
        };
        if let Err(e) = result {
            let profile = if let Request::AddMember { profile, .. } = &self { profile.as_str() } else { "" };
            eprintln!("request failed ({profile}): {e}");
        }
    }
}

fn main() {
    let mode = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_else(|| "compare".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match mode.as_str() {
        "compare" => runtime.block_on(run_compare()),
        "statements" => runtime.block_on(run_statements()),
        other => {
            eprintln!("usage: cargo bench -p scimgate-edge --bench peers -- [compare|statements] (not {other})");
            std::process::exit(2);
        }
    }
}
