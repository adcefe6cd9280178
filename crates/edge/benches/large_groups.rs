//! Large groups over real HTTP, on PostgreSQL and SQLite: the cases IdPs really send (a PATCH
//! adding or removing 10,000 members, Okta's full `replace` of 100,000 members, Entra's group
//! reads without members). Run by hand: `cargo bench -p scimgate-edge --bench large_groups`
//! (`BENCH_USERS` to change the 100,000, `BENCH_BACKENDS=postgres` for one backend). Results go
//! into docs/benchmarks.md; nothing here asserts a speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use domain::testing::{Backend, TestDb};
use domain::{
    AccountId, AccountStore, GroupMatcher, NewToken, OrganizationName, OrganizationStore, ProductAccount, Role,
    SqlStore, TenantName, TenantStore, TokenOwner, TokenStore, MAX_ACCOUNTS_PER_CALL,
};
use edge::{Application, Settings};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use token::{Scopes, TokenKind};

struct Gateway {
    base: String,
    token: String,
    client: reqwest::Client,
    store: SqlStore,
    _db: TestDb,
}

impl Gateway {
    async fn start(backend: Backend) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        let settings = Settings {
            database_url: db.url.expose().into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            rate_limit_per_second: 1_000_000,
            rate_limit_burst: 1_000_000,
            max_db_connections: 16,
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            ..Settings::default()
        };
        let app = Application::build(settings).await.expect("build");
        let base = format!("http://127.0.0.1:{}/scim/v2/bench", app.port());
        tokio::spawn(app.run_until_stopped());
        let store = db.store().await;
        let tenant = TenantName::parse("bench").unwrap();
        store.create_tenant(&tenant).await.unwrap();
        let issued = token::issue(TokenKind::Tenant).unwrap();
        let new = NewToken { id: issued.id, hash: issued.hash, scopes: Scopes::all(), name: None, expires_at: None };
        store.add_token(TokenOwner::Tenant(&tenant), new).await.unwrap();
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        Some(Self { base, token: issued.plaintext, client, store, _db: db })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Duration, usize) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").body(body.to_string());
        }
        let started = Instant::now();
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap().len();
        (status, started.elapsed(), bytes)
    }

    /// Create `n` users, 32 at a time; their ids.
    async fn users(&self, n: usize) -> Vec<String> {
        stream::iter(0..n)
            .map(|i| async move {
                let email = format!("user{i:06}@example.com");
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": email,
                    "emails": [{"value": email, "type": "work", "primary": true}],
                });
                let response = self
                    .client
                    .post(format!("{}/Users", self.base))
                    .bearer_auth(&self.token)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
            })
            .buffered(32)
            .collect()
            .await
    }
}

fn members(ids: &[String]) -> Vec<Value> {
    ids.iter().map(|id| json!({"value": id, "display": "User"})).collect()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn median_read(gateway: &Gateway, path: &str, n: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..n {
        let (status, took, _) = gateway.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200);
        times.push(took);
    }
    times.sort();
    times[n / 2]
}

async fn run(backend: Backend, n_users: usize) {
    let Some(gateway) = Gateway::start(backend).await else { return };
    let name = backend.name();
    if std::env::var("BENCH_LINKING").map_or(true, |v| v != "0") {
        // The product registered an account per user first, so every user is linked as it
        // arrives and every membership event names its product account.
        let tenant = TenantName::parse("bench").unwrap();
        let accounts: Vec<ProductAccount> = (0..n_users)
            .map(|i| {
                let id = AccountId::parse(&format!("acct-{i}")).unwrap();
                ProductAccount::new(id, Some(&format!("user{i:06}@example.com")), None).unwrap()
            })
            .collect();
        for chunk in accounts.chunks(MAX_ACCOUNTS_PER_CALL) {
            gateway.store.register_accounts(&tenant, chunk).await.unwrap();
        }
        println!("{name}: registered {n_users} product accounts");
    }
    let started = Instant::now();
    let users = gateway.users(n_users).await;
    println!("{name}: created {n_users} users in {:.1} s", started.elapsed().as_secs_f64());
    let ten_k = n_users.min(10_000);

    for mapped in [false, true] {
        let label = if mapped { "mapped to an organization" } else { "unmapped" };
        let group_name = if mapped { "Mapped" } else { "Plain" };
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": group_name});
        let (status, _, _) = gateway.send(reqwest::Method::POST, "/Groups", Some(&body)).await;
        assert_eq!(status, 201);
        let list = format!("/Groups?filter=displayName%20eq%20%22{group_name}%22&excludedAttributes=members");
        let id = {
            let response = gateway
                .client
                .get(format!("{}{list}", gateway.base))
                .bearer_auth(&gateway.token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            response["Resources"][0]["id"].as_str().unwrap().to_owned()
        };
        if mapped {
            // Every member change of a mapped group is also a membership change, with its events.
            let tenant = TenantName::parse("bench").unwrap();
            let organization = OrganizationName::parse("mapped").unwrap();
            gateway.store.create_organization(&tenant, &organization).await.unwrap();
            gateway
                .store
                .add_mapping(&tenant, GroupMatcher::Id(id.clone()), &organization, Role::Member)
                .await
                .unwrap();
        }
        let path = format!("/Groups/{id}?excludedAttributes=members");

        let add = patch(json!([{"op": "add", "path": "members", "value": members(&users[..ten_k])}]));
        let (status, took, _) = gateway.send(reqwest::Method::PATCH, &path, Some(&add)).await;
        assert_eq!(status, 200);
        println!("| {name} | {label} | PATCH add {ten_k} members (empty group) | {} |", ms(took));

        let remove = patch(json!([{"op": "remove", "path": "members", "value": members(&users[..ten_k])}]));
        let (status, took, _) = gateway.send(reqwest::Method::PATCH, &path, Some(&remove)).await;
        assert_eq!(status, 200);
        println!("| {name} | {label} | PATCH remove {ten_k} members | {} |", ms(took));

        let all = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": group_name, "members": members(&users)});
        let (status, took, _) = gateway.send(reqwest::Method::PUT, &path, Some(&all)).await;
        assert_eq!(status, 200);
        let bytes = all.to_string().len();
        println!(
            "| {name} | {label} | PUT with {n_users} members ({:.1} MB) into an empty group | {} |",
            bytes as f64 / 1e6,
            ms(took)
        );

        let replace = patch(json!([{"op": "replace", "path": "members", "value": members(&users)}]));
        let (status, took, _) = gateway.send(reqwest::Method::PATCH, &path, Some(&replace)).await;
        assert_eq!(status, 200);
        println!("| {name} | {label} | PATCH replace {n_users} members, none changed | {} |", ms(took));

        // Okta's "Push Now" after a tenth of the group changed.
        let shifted: Vec<String> = users[n_users / 10..].to_vec();
        let replace = patch(json!([{"op": "replace", "path": "members", "value": members(&shifted)}]));
        let (status, took, _) = gateway.send(reqwest::Method::PATCH, &path, Some(&replace)).await;
        assert_eq!(status, 200);
        println!("| {name} | {label} | PATCH replace {n_users} members, a tenth removed | {} |", ms(took));

        let add = patch(json!([{"op": "add", "path": "members", "value": members(&users[..ten_k])}]));
        let (status, took, _) = gateway.send(reqwest::Method::PATCH, &path, Some(&add)).await;
        assert_eq!(status, 200);
        println!("| {name} | {label} | PATCH add {ten_k} members to {} | {} |", shifted.len(), ms(took));

        let read = median_read(&gateway, &path, 101).await;
        println!("| {name} | {label} | GET group by id, excludedAttributes=members, {n_users} members (median of 101) | {} |", ms(read));
        let read = median_read(&gateway, &list, 101).await;
        println!(
            "| {name} | {label} | GET /Groups?filter=displayName eq, excludedAttributes=members (median of 101) | {} |",
            ms(read)
        );
        let (status, took, bytes) = gateway.send(reqwest::Method::GET, &format!("/Groups/{id}"), None).await;
        assert_eq!(status, 200);
        println!(
            "| {name} | {label} | GET group by id with all {n_users} members ({:.1} MB) | {} |",
            bytes as f64 / 1e6,
            ms(took)
        );
    }
}

fn main() {
    let n_users: usize = std::env::var("BENCH_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("| backend | group | case | time |\n|---|---|---|---|");
    for backend in backends.split(',') {
        let backend = match backend.trim() {
            "postgres" => Backend::Postgres,
            "sqlite" => Backend::Sqlite,
            other => panic!("unknown backend {other}"),
        };
        runtime.block_on(run(backend, n_users));
    }
}
