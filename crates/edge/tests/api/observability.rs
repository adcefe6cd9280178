//! Metrics on their own listener, request logs without secrets, traces over OTLP, and a shutdown
//! that fails no request. Logs, traces and signals are process-wide, so those tests run the
//! `scimgate` binary as a child process against the test's database.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use domain::testing::Backend;
use domain::{DeliveryResult, EventStore, TenantName, TokenOwner, WebhookSecret, WebhookUrl};
use edge::{Application, Settings};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{json, Value};
use token::Scopes;

use crate::both_backends;
use crate::helpers::{eventually, forged, issue, spawn_app, spawn_app_with, PrivateRedis, TestApp};

both_backends!(
    requests_are_counted_by_route_template_and_by_tenant_on_the_metrics_listener_only,
    refusals_are_counted_by_reason,
    a_stop_signal_drains_then_finishes_every_request_in_flight,
    a_patch_exports_child_spans_for_auth_the_store_and_reconciliation,
);

// ---------------------------------------------------------------------------------------------
// Metrics

/// A gateway on `app`'s database with metrics on, and where to reach it.
struct Metered {
    api: String,
    metrics: String,
    org: String,
    token: String,
    client: reqwest::Client,
}

impl Metered {
    async fn start(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings { metrics_listen: "127.0.0.1:0".parse().unwrap(), ..app.settings.clone() };
        configure(&mut settings);
        let gateway = Application::build(settings).await.expect("build");
        let api = format!("http://127.0.0.1:{}", gateway.port());
        let metrics = format!("http://127.0.0.1:{}/metrics", gateway.metrics_port().expect("metrics are on"));
        tokio::spawn(gateway.run_until_stopped());
        Self { api, metrics, org: app.org.clone(), token: app.token.clone(), client: app.client.clone() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/scim/v2/{}{path}", self.api, self.org)
    }

    async fn scrape(&self) -> Scrape {
        let response = self.client.get(&self.metrics).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        Scrape::parse(&response.text().await.unwrap())
    }
}

/// One scrape in Prometheus' text format: every series with its labels and value.
struct Scrape {
    text: String,
    series: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (key, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = match key.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (key, ""),
                };
                let labels = labels
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value.parse().unwrap())
            })
            .collect();
        Self { text: text.to_owned(), series }
    }

    /// The value of the one series `name` whose labels include `labels`; 0 when there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self
            .series
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, value)| *value)
            .collect();
        assert!(matching.len() <= 1, "{name} {labels:?} names {} series:\n{}", matching.len(), self.text);
        matching.first().copied().unwrap_or(0.0)
    }

    fn has_label(&self, name: &str, value: &str) -> bool {
        self.series.iter().any(|(_, l, _)| l.get(name).map(String::as_str) == Some(value))
    }
}

async fn requests_are_counted_by_route_template_and_by_tenant_on_the_metrics_listener_only(app: TestApp) {
    let gateway = Metered::start(&app, |_| {}).await;
    let (org, token) = (gateway.org.as_str(), gateway.token.as_str());
    let before = gateway.scrape().await;

    let user = json!({"schemas": [proto::schema::USER], "userName": "metrics@example.com"});
    let created = gateway
        .client
        .post(gateway.url("/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let got = gateway.client.get(gateway.url(&format!("/Users/{id}"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(got.status(), 200);
    }
    let refused = gateway.client.get(gateway.url("/Users")).bearer_auth(forged(token)).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(gateway.client.get(format!("{}{probe}", gateway.api)).send().await.unwrap().status(), 200);
    }
    let public = gateway.client.get(format!("{}/metrics", gateway.api)).send().await.unwrap();
    assert_eq!(public.status(), 404, "metrics never answer on the public port");

    let scrape = gateway.scrape().await;
    // Route-level series are shared by every tenant (and every test in this process): they grow
    // by at least this test's requests.
    let requests = "scimgate_http_requests_total";
    let create = [("route", "/scim/v2/{org}/Users"), ("method", "POST"), ("status", "201")];
    assert!(scrape.value(requests, &create) >= before.value(requests, &create) + 1.0, "{}", scrape.text);
    let read = [("route", "/scim/v2/{org}/Users/{id}"), ("method", "GET"), ("status", "200")];
    assert!(scrape.value(requests, &read) >= before.value(requests, &read) + 2.0, "{}", scrape.text);
    let refusal = [("route", "/scim/v2/{org}/Users"), ("method", "GET"), ("status", "401")];
    assert!(scrape.value(requests, &refusal) >= before.value(requests, &refusal) + 1.0, "{}", scrape.text);
    // Per tenant: counters by status class, counted once the token was accepted. The refused
    // request is not put under the tenant its URL names.
    let tenant = "scimgate_tenant_requests_total";
    assert_eq!(scrape.value(tenant, &[("tenant", org), ("class", "2xx")]), 3.0, "{}", scrape.text);
    assert_eq!(scrape.value(tenant, &[("tenant", org), ("class", "4xx")]), 0.0, "{}", scrape.text);
    assert!(!scrape.text.contains(&id), "raw paths never become labels");
    assert!(!scrape.has_label("route", "/healthz") && !scrape.has_label("route", "/readyz"), "{}", scrape.text);

    // Histograms carry no tenant: their buckets would multiply every tenant's series.
    let latency = "scimgate_http_request_duration_seconds";
    for (name, labels, _) in &scrape.series {
        assert!(!(name.starts_with(latency) && labels.contains_key("tenant")), "{name} {labels:?}");
        assert!(!(name == requests && labels.contains_key("tenant")), "{name} {labels:?}");
    }
    let count = format!("{latency}_count");
    assert!(scrape.value(&count, &create) >= before.value(&count, &create) + 1.0, "{}", scrape.text);
    let in_last_bucket: Vec<(&str, &str)> = create.iter().copied().chain([("le", "+Inf")]).collect();
    let bucket = format!("{latency}_bucket");
    assert!(scrape.value(&bucket, &in_last_bucket) >= 1.0, "{}", scrape.text);

    // The standard process metrics.
    for name in ["process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_threads"] {
        assert!(scrape.value(name, &[]) > 0.0, "{name}:\n{}", scrape.text);
    }
    for name in ["process_cpu_seconds_total", "process_start_time_seconds", "process_virtual_memory_bytes"] {
        assert!(scrape.series.iter().any(|(n, _, _)| n == name), "{name}:\n{}", scrape.text);
    }

    let failures = |s: &Scrape| s.value("scimgate_auth_failures_total", &[("api", "scim"), ("reason", "wrong_secret")]);
    assert!(failures(&scrape) >= failures(&before) + 1.0, "{}", scrape.text);
    // This gateway's first use of the token ran Argon2 (a miss); the two reads found the verdict
    // cached (hits).
    let lookups = |s: &Scrape, result| s.value("scimgate_token_cache_lookups_total", &[("result", result)]);
    assert!(lookups(&scrape, "miss") >= lookups(&before, "miss") + 1.0, "{}", scrape.text);
    assert!(lookups(&scrape, "hit") >= lookups(&before, "hit") + 2.0, "{}", scrape.text);

    // The main pool, and on PostgreSQL the key lookups' one: as many connections as configured.
    let pools = ["main", "lookups"];
    let max_connections = f64::from(app.settings.max_db_connections);
    let max: f64 = pools.iter().map(|p| scrape.value("scimgate_db_pool_max_connections", &[("pool", p)])).sum();
    assert_eq!(max, max_connections, "{}", scrape.text);
    assert!(scrape.value("scimgate_db_pool_max_connections", &[("pool", "main")]) >= 1.0, "{}", scrape.text);
    let open: f64 = pools
        .iter()
        .flat_map(|p| {
            ["in_use", "idle"]
                .map(|state| scrape.value("scimgate_db_pool_connections", &[("pool", p), ("state", state)]))
        })
        .sum();
    assert!((1.0..=max_connections).contains(&open), "{}", scrape.text);
    assert_eq!(scrape.value("scimgate_rate_limit_redis_fallback", &[]), 0.0);
    assert_eq!(scrape.value("scimgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
}

async fn refusals_are_counted_by_reason(app: TestApp) {
    let gateway = Metered::start(&app, |s| {
        s.rate_limit_per_second = 1;
        s.rate_limit_burst = 1;
        s.auth_failure_burst = 1;
        s.auth_failure_refill_seconds = 3600;
    })
    .await;
    let before = gateway.scrape().await;
    let statuses = [
        gateway.client.get(gateway.url("/Users")).bearer_auth(&gateway.token).send().await.unwrap().status(),
        gateway.client.get(gateway.url("/Users")).bearer_auth(&gateway.token).send().await.unwrap().status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 429]);
    let tenant_limit = [("tenant", gateway.org.as_str()), ("reason", "tenant_limit")];
    assert_eq!(gateway.scrape().await.value("scimgate_rate_limited_total", &tenant_limit), 1.0);

    let forgery = forged(&gateway.token);
    // One failure is within the burst, the second blocks the address, the third is refused.
    for expected in [401, 401, 429] {
        let response = gateway.client.get(gateway.url("/Users")).bearer_auth(&forgery).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    let auth_limit = [("tenant", ""), ("reason", "auth_failures")];
    let scrape = gateway.scrape().await;
    let refusals = |s: &Scrape| s.value("scimgate_rate_limited_total", &auth_limit);
    assert!(refusals(&scrape) >= refusals(&before) + 1.0, "{}", scrape.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fallback_shows_as_a_gauge() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let Some(mut redis) = PrivateRedis::start() else { return };
    let gateway = Metered::start(&app, |s| {
        s.redis_url = Some(redis.url().into());
        s.redis_timeout_ms = 200;
    })
    .await;
    let fallback = || async { gateway.scrape().await.value("scimgate_rate_limit_redis_fallback", &[]) };
    let request = || async { gateway.client.get(gateway.url("/Users")).bearer_auth(&gateway.token).send().await };
    assert_eq!(request().await.unwrap().status(), 200);
    assert_eq!(fallback().await, 0.0);

    redis.stop();
    assert_eq!(request().await.unwrap().status(), 200, "served with limits per process");
    assert_eq!(fallback().await, 1.0);

    redis.resume().unwrap();
    assert!(eventually(Duration::from_secs(10), || async { fallback().await == 0.0 }).await, "back on Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_gauges_count_dead_letters_undelivered_events_and_expiring_tokens_on_sqlite() {
    store_gauges_count_dead_letters_undelivered_events_and_expiring_tokens(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_gauges_count_dead_letters_undelivered_events_and_expiring_tokens_on_postgres() {
    store_gauges_count_dead_letters_undelivered_events_and_expiring_tokens(Backend::Postgres).await;
}

/// The dead-letter, webhook-age and token-expiry gauges reflect the store, computed when the
/// gateway starts (and every 30 s after).
async fn store_gauges_count_dead_letters_undelivered_events_and_expiring_tokens(backend: Backend) {
    // No deliverer: the test decides what is delivered and what is dead-lettered.
    let Some(app) = spawn_app_with(backend, |s| s.webhook_workers = 0).await else { return };
    let empty = Metered::start(&app, |_| {}).await;
    // +Inf until this gateway computed them (the gauges are process-wide; other tests' gateways
    // set them too, but each sets its own figures when scraped).
    let computed = |s: &Scrape| s.value("scimgate_store_gauges_age_seconds", &[]).is_finite();
    assert!(eventually(Duration::from_secs(10), || async { computed(&empty.scrape().await) }).await);
    let scrape = empty.scrape().await;
    assert_eq!(scrape.value("scimgate_webhook_dead_letters", &[]), 0.0, "{}", scrape.text);
    assert_eq!(scrape.value("scimgate_webhook_oldest_undelivered_event_age_seconds", &[]), 0.0, "{}", scrape.text);
    assert_eq!(scrape.value("scimgate_tokens_expiring_soon", &[("kind", "tenant")]), 0.0, "{}", scrape.text);

    let tenant = TenantName::parse(&app.org).unwrap();
    let now = domain::now_micros();
    let day = 24 * 3600 * 1_000_000_i64;
    for expires_in_days in [3, 6, 30] {
        issue(&app.store, TokenOwner::Tenant(&tenant), Scopes::all(), Some(now + expires_in_days * day)).await;
    }
    issue(&app.store, TokenOwner::Operator, Scopes::all(), Some(now + day)).await;
    // An expired token is no longer "expiring".
    issue(&app.store, TokenOwner::Tenant(&tenant), Scopes::all(), Some(now - day)).await;
    let url = WebhookUrl::parse("https://receiver.example.com/scim-events").unwrap();
    app.store.add_webhook(&tenant, &url, &WebhookSecret::new("s".repeat(32)), true).await.unwrap();
    for name in ["gauge-a@example.com", "gauge-b@example.com"] {
        let user = json!({"schemas": [proto::schema::USER], "userName": name});
        let response = app
            .client
            .post(format!("{}/scim/v2/{}/Users", app.address, app.org))
            .bearer_auth(&app.token)
            .header("content-type", "application/scim+json")
            .body(user.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // The first event fails for good; the second waits.
    let batch = app.store.claim_delivery(domain::now_micros(), domain::now_micros() + 60_000_000, 1).await.unwrap();
    let batch = batch.expect("an event is due");
    let failed = DeliveryResult::Failed { error: "receiver down".into(), retry_at: None };
    app.store.finish_delivery(&batch, &failed).await.unwrap();

    let gateway = Metered::start(&app, |_| {}).await;
    assert!(eventually(Duration::from_secs(10), || async { computed(&gateway.scrape().await) }).await);
    let scrape = gateway.scrape().await;
    assert_eq!(scrape.value("scimgate_webhook_dead_letters", &[]), 1.0, "{}", scrape.text);
    let age = scrape.value("scimgate_webhook_oldest_undelivered_event_age_seconds", &[]);
    assert!(age > 0.0 && age < 600.0, "{age}:\n{}", scrape.text);
    assert_eq!(scrape.value("scimgate_tokens_expiring_soon", &[("kind", "tenant")]), 2.0, "{}", scrape.text);
    assert_eq!(scrape.value("scimgate_tokens_expiring_soon", &[("kind", "operator")]), 1.0, "{}", scrape.text);
    assert!(scrape.value("scimgate_store_gauges_age_seconds", &[]) < 60.0, "{}", scrape.text);
    // Aged at each scrape: a stalled queue shows a growing age between computations.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = gateway.scrape().await.value("scimgate_webhook_oldest_undelivered_event_age_seconds", &[]);
    assert!(later >= age + 1.0, "{age} then {later}");
}

// ---------------------------------------------------------------------------------------------
// The binary as a child process

/// `scimgate serve` on `app`'s database, logging JSON to a buffer the test reads.
struct Gateway {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    fn start(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scimgate"));
        command
            .arg("serve")
            .env("SCIMGATE_DATABASE_URL", &app.database_url)
            .env("SCIMGATE_LISTEN", "127.0.0.1:0")
            .env("SCIMGATE_METRICS_LISTEN", "127.0.0.1:0")
            .env("SCIMGATE_LOG_FORMAT", "json")
            .env("SCIMGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("run scimgate");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut gateway = Self { child, port: 0, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while gateway.port == 0 {
            gateway.port = gateway
                .log_events()
                .iter()
                .find(|e| e["fields"]["message"] == "scimgate listening")
                .and_then(|e| e["fields"]["port"].as_u64())
                .map_or(0, |port| u16::try_from(port).unwrap());
            if let Some(status) = gateway.child.try_wait().unwrap() {
                panic!("scimgate exited with {status}:\n{}", gateway.log.lock().unwrap().join("\n"));
            }
            assert!(Instant::now() < deadline, "scimgate did not start:\n{}", gateway.log.lock().unwrap().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
        gateway
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Wait for the process to exit, at most `limit`.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "scimgate did not exit:\n{}", self.log.lock().unwrap().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn log_events(&self) -> Vec<Value> {
        self.log.lock().unwrap().iter().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that opens a new connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Logs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_route_tenant_and_request_id_but_never_the_token() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    // The most verbose filter: no crate may log the token at any level.
    let mut gateway = Gateway::start(&app, &[("SCIMGATE_LOG", "trace")]);
    let client = fresh_client();
    let users = gateway.url(&format!("/scim/v2/{}/Users", app.org));
    // The token in a body: as a password, which is accepted and never returned.
    let user = json!({"schemas": [proto::schema::USER], "userName": "logs@example.com", "password": app.token});
    let created = client
        .post(&users)
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let read = client.get(gateway.url(&format!("/scim/v2/{}/Users/{id}", app.org))).bearer_auth(&app.token);
    assert_eq!(read.send().await.unwrap().status(), 200);
    let forgery = forged(&app.token);
    let refused = client.get(&users).bearer_auth(&forgery);
    assert_eq!(refused.send().await.unwrap().status(), 401);
    // The token in the query string: as `access_token` (refused), as `token`, and in a filter.
    let in_query = client.get(format!("{users}?access_token={}", app.token));
    assert_eq!(in_query.send().await.unwrap().status(), 401);
    let filter = format!("userName eq \"logs@example.com\" or userName eq \"{}\"", app.token);
    let listed = client.get(&users).bearer_auth(&app.token).query(&[
        ("filter", filter.as_str()),
        ("token", &app.token),
        ("count", "5"),
    ]);
    assert_eq!(listed.send().await.unwrap().status(), 200);
    assert_eq!(client.get(gateway.url("/readyz")).send().await.unwrap().status(), 200);
    gateway.signal("TERM");
    assert!(gateway.wait(Duration::from_secs(40)).success());

    let text = gateway.log_text();
    let secret = |token: &str| token.split('_').nth(2).unwrap().to_owned();
    for needle in [app.token.clone(), secret(&app.token), forgery.clone(), secret(&forgery)] {
        assert!(!text.contains(&needle), "a token or its secret was logged");
    }
    assert!(!text.contains("logs@example.com"), "filter values are redacted by default");
    assert!(!text.contains('\u{1b}'), "no colour codes off a terminal");

    // Every line is JSON, with the request's fields once (`span`, no `spans`).
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event.get("spans").is_none(), "{line}");
    }
    let events = gateway.log_events();
    let completed: Vec<&Value> = events.iter().filter(|e| e["fields"]["message"] == "request completed").collect();
    assert_eq!(completed.len(), 6, "one line per request: {completed:#?}");
    let repeated = events.iter().filter(|e| {
        let message = e["fields"]["message"].as_str().unwrap_or_default();
        message.contains("Error encountered") || message.contains("authentication refused")
    });
    assert_eq!(repeated.count(), 0, "no second line for a refused request");

    let read = completed
        .iter()
        .find(|e| e["span"]["http.route"] == "/scim/v2/{org}/Users/{id}")
        .unwrap_or_else(|| panic!("no completed read in:\n{text}"));
    assert_eq!(read["level"], "INFO");
    assert_eq!(read["span"]["tenant"], app.org.as_str(), "{read}");
    assert_eq!(read["span"]["http.method"], "GET", "{read}");
    assert_eq!(read["span"]["http.status_code"], 200, "{read}");
    assert!(read["fields"]["latency_ms"].as_f64().is_some(), "{read}");
    let request_id = read["span"]["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 36, "a UUID: {read}");

    let refusals: Vec<&&Value> = completed.iter().filter(|e| e["span"]["http.status_code"] == 401).collect();
    assert_eq!(refusals.len(), 2, "{refusals:#?}");
    let refusal = refusals[0];
    assert_eq!(refusal["level"], "INFO", "a 401 is normal traffic: {refusal}");
    assert_eq!(refusal["span"]["error.reason"], "secret does not match", "{refusal}");
    assert_eq!(refusal["span"]["tenant"], app.org.as_str(), "the {{org}} of the path, even when refused");
    assert_ne!(refusal["span"]["request_id"], read["span"]["request_id"]);
    assert_eq!(refusals[1]["span"]["error.reason"], "no bearer token");
    assert_eq!(refusals[1]["span"]["http.target"], format!("/scim/v2/{}/Users?access_token=%5BREDACTED%5D", app.org));

    let list = completed
        .iter()
        .find(|e| e["span"]["http.route"] == "/scim/v2/{org}/Users" && e["span"]["http.status_code"] == 200)
        .unwrap();
    let target = list["span"]["http.target"].as_str().unwrap();
    assert!(target.contains("filter=userName+eq+%22***%22+or+userName+eq+%22***%22"), "{target}");
    assert!(target.contains("token=%5BREDACTED%5D") && target.contains("count=5"), "{target}");

    let probe = completed.iter().find(|e| e["span"]["http.route"] == "/readyz").unwrap();
    assert_eq!(probe["level"], "DEBUG", "probes stay out of info logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_values_are_logged_only_when_asked_for_and_never_a_token() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let mut gateway = Gateway::start(&app, &[("SCIMGATE_LOG_FILTER_VALUES", "true")]);
    let client = fresh_client();
    let users = gateway.url(&format!("/scim/v2/{}/Users", app.org));
    let listed = client
        .get(&users)
        .bearer_auth(&app.token)
        .query(&[("filter", "userName eq \"shown@example.com\""), ("access_token", &app.token)]);
    assert_eq!(listed.send().await.unwrap().status(), 200);
    gateway.signal("TERM");
    assert!(gateway.wait(Duration::from_secs(40)).success());
    let text = gateway.log_text();
    assert!(text.contains("shown%40example.com"), "{text}");
    assert!(!text.contains(app.token.split('_').nth(2).unwrap()), "tokens stay redacted");
}

// ---------------------------------------------------------------------------------------------
// Traces

/// A minimal OTLP receiver: keeps every exported `ExportTraceServiceRequest`, received over
/// HTTP (`POST /v1/traces`) or gRPC (`TraceService/Export` over HTTP/2).
struct Collector {
    port: u16,
    messages: Arc<Mutex<Vec<web::Bytes>>>,
}

impl Collector {
    fn http() -> Self {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = web::Data::new(messages.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new().app_data(kept.clone()).route(
                "/v1/traces",
                web::post().to(|kept: web::Data<Arc<Mutex<Vec<web::Bytes>>>>, body: web::Bytes| async move {
                    kept.lock().unwrap().push(body);
                    // An empty ExportTraceServiceResponse: everything accepted.
                    HttpResponse::Ok().content_type("application/x-protobuf").finish()
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { port, messages }
    }

    async fn grpc() -> Self {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let kept = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(socket).await else { return };
                    while let Some(Ok((request, respond))) = connection.accept().await {
                        tokio::spawn(Self::export(request, respond, kept.clone()));
                    }
                });
            }
        });
        Self { port, messages }
    }

    /// Answer one gRPC call: keep its message, reply with an empty one and status OK.
    async fn export(
        request: http::Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<web::Bytes>,
        kept: Arc<Mutex<Vec<web::Bytes>>>,
    ) {
        assert_eq!(request.uri().path(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
        let mut body = request.into_body();
        let mut frame = Vec::new();
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
            frame.extend_from_slice(&chunk);
        }
        // A gRPC message: a compression flag byte, a 4-byte length, the protobuf.
        assert_eq!(frame.first(), Some(&0), "uncompressed");
        kept.lock().unwrap().push(web::Bytes::copy_from_slice(&frame[5..]));
        let head = http::Response::builder().status(200).header("content-type", "application/grpc").body(()).unwrap();
        let mut stream = respond.send_response(head, false).unwrap();
        stream.send_data(web::Bytes::from_static(&[0, 0, 0, 0, 0]), false).unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        stream.send_trailers(trailers).unwrap();
    }

    fn spans(&self) -> Vec<(Vec<KeyValue>, opentelemetry_proto::tonic::trace::v1::Span)> {
        let mut spans = Vec::new();
        for message in self.messages.lock().unwrap().iter() {
            let request = ExportTraceServiceRequest::decode(message.as_ref()).expect("OTLP protobuf");
            for resource_spans in request.resource_spans {
                let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    spans.extend(scope.spans.into_iter().map(|span| (resource.clone(), span)));
                }
            }
        }
        spans
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.as_str()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_go_over_otlp_http_with_the_callers_trace_as_parent() {
    traces_reach(Collector::http(), "http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_go_over_otlp_grpc_with_the_callers_trace_as_parent() {
    traces_reach(Collector::grpc().await, "grpc").await;
}

async fn traces_reach(collector: Collector, protocol: &str) {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let mut gateway = Gateway::start(
        &app,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", "scimgate-under-test"),
            // Nothing is exported on a timer during the test: what arrives was flushed at exit.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    );
    let (trace_id, parent_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let response = fresh_client()
        .get(gateway.url(&format!("/scim/v2/{}/Users", app.org)))
        .bearer_auth(&app.token)
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    gateway.signal("TERM");
    assert!(gateway.wait(Duration::from_secs(40)).success(), "{}", gateway.log_text());

    let spans = collector.spans();
    let (resource, span) = spans
        .iter()
        .find(|(_, span)| attribute(&span.attributes, "http.route") == Some("/scim/v2/{org}/Users"))
        .unwrap_or_else(|| panic!("no request span among {} exported:\n{}", spans.len(), gateway.log_text()));
    assert_eq!(attribute(resource, "service.name"), Some("scimgate-under-test"));
    assert_eq!(attribute(resource, "service.version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(hex(&span.trace_id), trace_id, "the caller's trace");
    assert_eq!(hex(&span.parent_span_id), parent_id, "the caller's span is the parent");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(span.name, "GET /scim/v2/{org}/Users");
    assert_eq!(attribute(&span.attributes, "tenant"), Some(app.org.as_str()));
    assert!(!format!("{spans:?}").contains(&app.token), "no token in any span");
}

async fn a_patch_exports_child_spans_for_auth_the_store_and_reconciliation(app: TestApp) {
    let collector = Collector::http();
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let mut gateway =
        Gateway::start(&app, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "600000")]);
    let client = fresh_client();
    let user = json!({"schemas": [proto::schema::USER], "userName": "spans@example.com"});
    let created = client
        .post(gateway.url(&format!("/scim/v2/{}/Users", app.org)))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    // Deactivating a user reconciles its memberships.
    let patch = json!({
        "schemas": [proto::patch::PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    let patched = client
        .patch(gateway.url(&format!("/scim/v2/{}/Users/{id}", app.org)))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    gateway.signal("TERM");
    assert!(gateway.wait(Duration::from_secs(40)).success(), "{}", gateway.log_text());

    let spans: Vec<_> = collector.spans().into_iter().map(|(_, span)| span).collect();
    let request = spans
        .iter()
        .find(|span| span.name == "PATCH /scim/v2/{org}/Users/{id}")
        .unwrap_or_else(|| panic!("no PATCH span among {} exported:\n{}", spans.len(), gateway.log_text()));
    let in_request: Vec<_> = spans.iter().filter(|span| span.trace_id == request.trace_id).collect();
    let named = |name: &str| {
        in_request.iter().find(|span| span.name == name).unwrap_or_else(|| {
            panic!(
                "no `{name}` span in the PATCH's trace: {:?}",
                in_request.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let (auth, store, reconcile) = (named("auth"), named("store.patch"), named("reconcile"));
    assert_eq!(auth.parent_span_id, request.span_id, "authentication is a child of the request");
    assert_eq!(store.parent_span_id, request.span_id, "the store operation is a child of the request");
    assert!(
        in_request.iter().any(|span| span.span_id == reconcile.parent_span_id
            && (span.span_id == store.span_id || span.parent_span_id == store.span_id)),
        "reconciliation runs inside the store operation"
    );
    assert_eq!(named("token.verify").parent_span_id, auth.span_id, "token verification runs inside authentication");
    assert_eq!(attribute(&auth.attributes, "tenant"), Some(app.org.as_str()));
    assert_eq!(attribute(&store.attributes, "id"), Some(id.as_str()));
    assert_eq!(attribute(&store.attributes, "kind"), Some("User"));
    assert!(attribute(&reconcile.attributes, "tenant").is_some_and(|t| !t.is_empty()));
    let exported = format!("{spans:?}");
    assert!(!exported.contains(&app.token), "no token in any span");
    assert!(!exported.contains("spans@example.com"), "no personal data in any span");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Shutdown

/// A `POST /Users` whose body is sent in two halves, so that it is in flight for as long as the
/// test wants.
struct SlowRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl SlowRequest {
    fn start(port: u16, org: &str, token: &str, user_name: &str) -> Self {
        let body = json!({"schemas": [proto::schema::USER], "userName": user_name}).to_string().into_bytes();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!(
            "POST /scim/v2/{org}/Users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let (first, rest) = body.split_at(body.len() / 2);
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(first).unwrap();
        Self { stream, rest: rest.to_vec() }
    }

    /// Send the rest of the body; the response's status line and body.
    fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).unwrap();
        self.stream.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let mut response = String::new();
        self.stream.read_to_string(&mut response).unwrap();
        response
    }
}

async fn a_stop_signal_drains_then_finishes_every_request_in_flight(app: TestApp) {
    let drain = Duration::from_secs(5);
    let mut gateway = Gateway::start(&app, &[("SCIMGATE_DRAIN_SECONDS", "5")]);
    let client = fresh_client();
    let users = gateway.url(&format!("/scim/v2/{}/Users", app.org));
    assert_eq!(client.get(gateway.url("/readyz")).send().await.unwrap().status(), 200);

    let slow: Vec<SlowRequest> = (0..3)
        .map(|i| SlowRequest::start(gateway.port, &app.org, &app.token, &format!("slow{i}@example.com")))
        .collect();
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let request =
                client.post(&users).bearer_auth(&app.token).header("content-type", "application/scim+json").body(
                    json!({"schemas": [proto::schema::USER], "userName": format!("burst{i}@example.com")}).to_string(),
                );
            tokio::spawn(request.send())
        })
        .collect();
    let signalled = Instant::now();
    gateway.signal("TERM");
    for request in burst {
        assert_eq!(request.await.unwrap().unwrap().status(), 201);
    }

    // Draining: not ready, but everything else is served, on new connections too.
    let readiness = client.get(gateway.url("/readyz")).send().await.unwrap();
    assert_eq!(readiness.status(), 503);
    assert_eq!(readiness.json::<Value>().await.unwrap()["status"], "draining");
    assert_eq!(client.get(gateway.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(&users).bearer_auth(&app.token).send().await.unwrap().status(), 200);

    // After the drain the listener is closed: new connections are refused.
    let refused = eventually(drain + Duration::from_secs(10), || async {
        TcpStream::connect(("127.0.0.1", gateway.port)).is_err()
    })
    .await;
    assert!(refused, "the listener still accepts after the drain");
    assert!(signalled.elapsed() >= drain, "the listener closed before the drain ended");

    // Requests accepted before are still answered.
    for request in slow {
        let response = tokio::task::spawn_blocking(move || request.finish()).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = gateway.wait(Duration::from_secs(40));
        (status, gateway.log_text())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {}:\n{}", status.0, status.1);

    let listed = app.get("/Users?filter=userName sw \"slow\"").await.json::<Value>().await.unwrap();
    assert_eq!(listed["totalResults"], 3, "{listed}");
    let listed = app.get("/Users?filter=userName sw \"burst\"").await.json::<Value>().await.unwrap();
    assert_eq!(listed["totalResults"], 20, "{listed}");
}
