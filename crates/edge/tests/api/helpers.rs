//! The one test-app helper: the real server on a random port against a fresh database, with a
//! fresh tenant and token.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use domain::testing::{Backend, TestDb};
use domain::{NewToken, SqlStore, TenantName, TenantStore, TokenOwner, TokenStore};
use edge::{Application, Settings};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use token::Scopes;

pub const SCIM_JSON: &str = "application/scim+json";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        edge::telemetry::init(edge::config::LogFormat::Pretty);
    }
});

pub struct TestApp {
    pub address: String,
    pub org: String,
    pub token: String,
    /// An operator token for `/admin/v1`.
    pub operator_token: String,
    pub client: reqwest::Client,
    pub store: SqlStore,
    /// The database URL, password included, for running the CLI against the same database.
    pub database_url: String,
    /// The settings this instance was built with (port 0: see `address` for the real one).
    pub settings: Settings,
    db: Arc<TestDb>,
}

/// Start the gateway on `backend`; `None` when that backend is unavailable (outside CI).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    LazyLock::force(&TRACING);
    let db = Arc::new(TestDb::new(backend).await?);
    let mut settings = Settings {
        database_url: db.url.expose().into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        // Tests that read metrics turn them on, on a port of their own.
        metrics_listen: edge::config::MetricsListen::Off,
        ..Settings::default()
    };
    configure(&mut settings);
    let address = start(settings.clone()).await;
    let store = db.store().await;
    let org = format!("org-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let token = issue_token(&store, &org, Scopes::all()).await;
    let operator_token = issue(&store, TokenOwner::Operator, Scopes::all(), None).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let database_url = db.url.expose().to_owned();
    Some(TestApp { address, org, token, operator_token, client, store, database_url, settings, db })
}

/// Build and start a gateway; its base address.
async fn start(settings: Settings) -> String {
    let app = Application::build(settings).await.expect("build application");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    address
}

/// Create the tenant if needed and issue it a token.
pub async fn issue_token(store: &SqlStore, org: &str, scopes: Scopes) -> String {
    let name = TenantName::parse(org).unwrap();
    if store.tenant(&name).await.is_err() {
        store.create_tenant(&name).await.unwrap();
    }
    issue(store, TokenOwner::Tenant(&name), scopes, None).await
}

/// Issue a token straight into the store; its plaintext.
pub async fn issue(store: &SqlStore, owner: TokenOwner<'_>, scopes: Scopes, expires_at: Option<i64>) -> String {
    let kind = owner.kind();
    let issued = tokio::task::spawn_blocking(move || token::issue(kind)).await.unwrap().unwrap();
    let new = NewToken { id: issued.id, hash: issued.hash, scopes, name: None, expires_at };
    store.add_token(owner, new).await.unwrap();
    issued.plaintext
}

/// `token` with one character of its secret changed and a valid checksum: well-formed, with an
/// id that exists and a secret that does not match.
pub fn forged(token: &str) -> String {
    let parts: Vec<&str> = token.split('_').collect();
    let mut secret = parts[2].to_owned().into_bytes();
    secret[0] = if secret[0] == b'a' { b'b' } else { b'a' };
    let kind =
        if parts[0] == token::OPERATOR_TOKEN_PREFIX { token::TokenKind::Operator } else { token::TokenKind::Tenant };
    token::compose(kind, parts[1], &String::from_utf8(secret).unwrap())
}

/// Poll `check` every 50 ms until it holds, for at most `limit`; whether it held. For effects that
/// happen in the background (batched writes, recovery), never for speed.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestApp {
    /// A second gateway process on the same database (another replica), with the same tenant and
    /// tokens; `configure` adjusts its settings.
    pub async fn spawn_replica(&self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        let address = start(settings.clone()).await;
        TestApp {
            address,
            org: self.org.clone(),
            token: self.token.clone(),
            operator_token: self.operator_token.clone(),
            client: self.client.clone(),
            store: self.store.clone(),
            database_url: self.database_url.clone(),
            settings,
            db: self.db.clone(),
        }
    }

    /// The database under this app, for data in bulk and for looking at what it is doing.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// A request to the admin API with this app's operator token.
    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut request =
            self.client.request(method, format!("{}/admin/v1{path}", self.address)).bearer_auth(&self.operator_token);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
        }
        request.send().await.expect("admin request")
    }

    /// `GET /Users` with `token`; the status.
    pub async fn status_with(&self, token: &str) -> u16 {
        self.client.get(self.url("/Users")).bearer_auth(token).send().await.unwrap().status().as_u16()
    }

    /// Whether `token` is refused (401) within moments: for a change another process made, which
    /// a gateway on PostgreSQL learns of by a notice as it commits (docs/tokens-and-limits.md).
    pub async fn refused_soon(&self, token: &str) -> bool {
        eventually(Duration::from_secs(5), || async { self.status_with(token).await == 401 }).await
    }

    /// The tenant's SCIM base URL.
    pub fn base(&self) -> String {
        format!("{}/scim/v2/{}", self.address, self.org)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// A request with this app's token and a SCIM content type.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        self.send_with(method, &self.url(path), body, HeaderMap::new()).await
    }

    pub async fn send_with(&self, method: Method, url: &str, body: Option<&Value>, extra: HeaderMap) -> Response {
        let mut request = self.client.request(method, url).header(AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, SCIM_JSON).body(body.to_string());
        }
        for (k, v) in &extra {
            request = request.header(k, v);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.send(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.send(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None).await
    }

    /// POST a user and return its JSON (asserting 201).
    pub async fn create_user(&self, user_name: &str) -> Value {
        self.create_user_json(json!({ "schemas": [proto::schema::USER], "userName": user_name, "active": true })).await
    }

    pub async fn create_user_json(&self, body: Value) -> Value {
        let (status, json) = status_json(self.post("/Users", &body).await).await;
        assert_eq!(status, 201, "create user: {json}");
        json
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|id| json!({ "value": id })).collect();
        let body = json!({ "schemas": [proto::schema::GROUP], "displayName": name, "members": members });
        let (status, json) = status_json(self.post("/Groups", &body).await).await;
        assert_eq!(status, 201, "create group: {json}");
        json
    }

    pub async fn patch_ops(&self, path: &str, ops: Value) -> Response {
        self.patch(path, &json!({ "schemas": [proto::patch::PATCH_OP], "Operations": ops })).await
    }

    /// The ids of a list response, in order.
    pub async fn list_ids(&self, path: &str) -> Vec<String> {
        let (status, json) = status_json(self.get(path).await).await;
        assert_eq!(status, 200, "{path}: {json}");
        resource_ids(&json)
    }
}

pub fn resource_ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|a| a.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Status and JSON body; asserts the SCIM content type on every response with a body.
pub async fn status_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.unwrap();
    if text.is_empty() {
        return (status, Value::Null);
    }
    assert!(content_type.starts_with(SCIM_JSON), "content type `{content_type}` for {status}: {text}");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// Assert a SCIM error: status, `scimType`, and the RFC 7644 §3.12 shape.
pub async fn assert_scim_error(response: Response, status: u16, scim_type: Option<&str>) -> Value {
    let (got, json) = status_json(response).await;
    assert_eq!(got, status, "{json}");
    assert_eq!(json["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{json}");
    assert_eq!(json["status"], status.to_string(), "{json}");
    assert_eq!(json["scimType"].as_str(), scim_type, "{json}");
    assert!(json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{json}");
    json
}

/// Status and JSON body of an admin API response; errors must be problem details.
pub async fn admin_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.unwrap();
    if text.is_empty() {
        return (status, Value::Null);
    }
    let expected = if status >= 400 { "application/problem+json" } else { "application/json" };
    assert!(content_type.starts_with(expected), "content type `{content_type}` for {status}: {text}");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// Status and JSON body of a plain JSON endpoint (`/readyz`).
pub async fn plain_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared Redis of the test machine (`SCIMGATE_TEST_REDIS_URL`, default
/// `redis://127.0.0.1:6379`), or `None` (with a message) when it is unreachable outside CI.
pub fn shared_redis() -> Option<String> {
    let url = std::env::var("SCIMGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = url.trim_start_matches("redis://").split('/').next().unwrap_or_default().to_owned();
    let address = address.rsplit('@').next().unwrap_or_default().to_owned();
    if TcpStream::connect(&address).is_ok() {
        return Some(url);
    }
    assert!(!in_ci(), "Redis is required when CI=true but {url} is unreachable");
    eprintln!("SKIPPED: Redis not reachable at {url}");
    None
}

/// A Redis server of this test's own (the `redis-server` binary on a free port), which the test
/// may stop and start again. Stopped when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// `None` (with a message) when `redis-server` is not installed, outside CI.
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, child: None };
        if let Err(e) = redis.resume() {
            assert!(!in_ci(), "redis-server is required when CI=true: {e}");
            eprintln!("SKIPPED: cannot run redis-server: {e}");
            return None;
        }
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and wait until it accepts connections.
    pub fn resume(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("redis-server did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kill the server, as an outage would.
    pub fn stop(&mut self) {
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

pub fn header(name: &'static str, value: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(name, HeaderValue::from_str(value).unwrap());
    map
}
