//! One tenant cannot hurt another: stored values within one limit on both stores, requests of
//! bounded cost, a fair share of the database and a budget for body memory.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::testing::Backend;
use domain::{TenantName, TenantStore};
use proto::resource::{MAX_INDEXED_CHARS, MAX_MULTI_VALUES};
use proto::schema::{GROUP, USER};
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, eventually, issue_token, spawn_app_with, status_json, TestApp};

both_backends!(long_values_are_refused_alike_on_both_stores, costly_requests_are_refused_before_the_store);

/// `n` characters that no compression shrinks, four bytes each in UTF-8: PostgreSQL compresses a
/// run of one letter below its index limit, which would hide the problem.
fn incompressible(n: usize) -> String {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from_u32(0x1_0000 + x % 0xffff).unwrap()
        })
        .collect()
}

async fn refused(response: reqwest::Response, attr: &str) {
    let error = assert_scim_error(response, 400, Some("invalidValue")).await;
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains(attr) && detail.contains(&MAX_INDEXED_CHARS.to_string()), "{detail}");
}

async fn long_values_are_refused_alike_on_both_stores(app: TestApp) {
    let longest = incompressible(MAX_INDEXED_CHARS);
    let too_long = incompressible(3000);
    let user = app
        .create_user_json(
            json!({"schemas": [USER], "userName": longest, "externalId": longest, "displayName": longest}),
        )
        .await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let group = app.create_group(&longest, &[&user_id]).await;
    let group_id = group["id"].as_str().unwrap().to_owned();

    for attr in ["userName", "externalId", "displayName"] {
        let mut body = json!({"schemas": [USER], "userName": "someone"});
        body[attr] = json!(too_long);
        refused(app.post("/Users", &body).await, attr).await;
        refused(app.put(&format!("/Users/{user_id}"), &body).await, attr).await;
        let op = json!([{"op": "replace", "path": attr, "value": too_long}]);
        refused(app.patch_ops(&format!("/Users/{user_id}"), op).await, attr).await;
    }
    for attr in ["displayName", "externalId"] {
        let mut body = json!({"schemas": [GROUP], "displayName": "team"});
        body[attr] = json!(too_long);
        refused(app.post("/Groups", &body).await, attr).await;
        refused(app.put(&format!("/Groups/{group_id}"), &body).await, attr).await;
        let op = json!([{"op": "replace", "path": attr, "value": too_long}]);
        refused(app.patch_ops(&format!("/Groups/{group_id}"), op).await, attr).await;
    }
    let op = json!([{"op": "add", "path": "members", "value": [{"value": too_long}]}]);
    refused(app.patch_ops(&format!("/Groups/{group_id}"), op).await, "members").await;

    // Nothing was changed by the refusals.
    let (status, stored) = status_json(app.get(&format!("/Users/{user_id}")).await).await;
    assert_eq!((status, stored["userName"].as_str()), (200, Some(longest.as_str())));
}

async fn costly_requests_are_refused_before_the_store(app: TestApp) {
    let emails: Vec<Value> =
        (0..=MAX_MULTI_VALUES).map(|i| json!({"value": format!("u{i}@example.com"), "type": "work"})).collect();
    let body = json!({"schemas": [USER], "userName": "many", "emails": emails});
    let error = assert_scim_error(app.post("/Users", &body).await, 400, Some("invalidValue")).await;
    assert!(error["detail"].as_str().unwrap().contains("`emails`"), "{error}");
    let body = json!({"schemas": [USER], "userName": "enough", "emails": emails[..MAX_MULTI_VALUES]});
    assert_eq!(app.post("/Users", &body).await.status(), 201);

    let clauses =
        |n: usize, attr: &str| (0..n).map(|i| format!("{attr} co \"zq{i}\"")).collect::<Vec<_>>().join(" or ");
    for filter in [clauses(proto::filter::MAX_FILTER_CLAUSES + 1, "userName"), clauses(5, "emails.value")] {
        let response = app.client.get(app.url("/Users")).query(&[("filter", &filter)]).bearer_auth(&app.token).send();
        let error = assert_scim_error(response.await.unwrap(), 400, Some("tooMany")).await;
        assert!(error["detail"].as_str().unwrap().contains("at most"), "{error}");
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});
        assert_scim_error(app.send(Method::POST, "/.search", Some(&search)).await, 400, Some("tooMany")).await;
    }
    let (status, _) = status_json(app.get("/Users?filter=emails.value%20co%20%22u1%22").await).await;
    assert_eq!(status, 200);
}

/// `users` users of `app`'s tenant with as many emails as a user may have, written straight
/// into the database: the API would take minutes.
async fn seed_users(app: &TestApp, backend: Backend, users: usize) {
    let tenant = app.store.tenant(&TenantName::parse(&app.org).unwrap()).await.unwrap();
    let emails: Vec<Value> =
        (0..MAX_MULTI_VALUES).map(|i| json!({"value": format!("person{i}.long-address@example.com")})).collect();
    let data = json!({"schemas": [USER], "userName": "seed", "title": "engineer", "emails": emails}).to_string();
    let columns = "tenant_id, id, user_name, user_name_lower, active, data, version, created_at, updated_at";
    let tenant_id = tenant.id.as_str();
    let sql = match backend {
        Backend::Postgres => format!(
            "INSERT INTO users ({columns}) SELECT '{tenant_id}', 'seed-' || g, 'seed' || g, 'seed' || g, TRUE, \
             '{data}'::jsonb, 1, 0, 0 FROM generate_series(1, {users}) AS g"
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {users}) \
             INSERT INTO users ({columns}) SELECT '{tenant_id}', 'seed-' || n, 'seed' || n, 'seed' || n, 1, \
             '{data}', 1, 0, 0 FROM g"
        ),
    };
    assert_eq!(app.db().execute(&sql).await.unwrap(), users as u64);
}

/// A legal search that costs the database a lot: substring tests over every email and title.
fn costly_filter() -> String {
    let mut clauses: Vec<String> =
        (0..proto::filter::MAX_MULTI_VALUED_SUBSTRINGS).map(|i| format!("emails.value co \"zq{i}\"")).collect();
    clauses.extend((clauses.len()..proto::filter::MAX_FILTER_CLAUSES).map(|i| format!("title co \"zq{i}\"")));
    clauses.join(" or ")
}

// The fairness tests need settings of their own.
mod noisy_neighbour {
    use super::*;

    async fn run(backend: Backend) {
        let Some(app) = spawn_app_with(backend, |s| {
            // Two of four connections for each tenant's requests, two waiting at most.
            s.max_db_connections = 4;
            s.db_requests_per_tenant = 2;
            s.db_queue_per_tenant = 2;
            s.db_queue_wait_ms = 200;
            s.db_request_timeout_ms = 1000;
            s.db_statement_timeout_ms = 1000;
            s.rate_limit_per_second = 100_000;
            s.rate_limit_burst = 100_000;
        })
        .await
        else {
            return;
        };
        seed_users(&app, backend, 4000).await;
        let other = format!("{}-b", app.org);
        let other_token = issue_token(&app.store, &other, token::Scopes::all()).await;

        // Tenant A: eight clients sending the costly search again and again, each giving up after
        // 300 ms and sending it again.
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{}?filter={}", app.url("/Users"), urlencode(&costly_filter()));
        let attackers: Vec<_> = (0..8)
            .map(|_| {
                let (client, url, token, stop) = (app.client.clone(), url.clone(), app.token.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut sent = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let _ = client.get(&url).bearer_auth(&token).timeout(Duration::from_millis(300)).send().await;
                        sent += 1;
                    }
                    sent
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Tenant B meanwhile: every request succeeds.
        let b = |method: Method, path: &str| {
            app.client
                .request(method, format!("{}/scim/v2/{other}{path}", app.address))
                .bearer_auth(&other_token)
                .timeout(Duration::from_secs(10))
        };
        for i in 0..15 {
            let body = json!({"schemas": [USER], "userName": format!("b{i}")});
            let created =
                b(Method::POST, "/Users").header("content-type", "application/scim+json").body(body.to_string());
            assert_eq!(created.send().await.unwrap().status(), 201, "B's POST {i}");
            let found = b(Method::GET, &format!("/Users?filter=userName%20eq%20%22b{i}%22")).send().await.unwrap();
            assert_eq!(found.status(), 200, "B's search {i}");
        }
        stop.store(true, Ordering::Relaxed);
        let mut sent = 0;
        for attacker in attackers {
            sent += attacker.await.unwrap();
        }
        assert!(sent >= 8, "the attack ran");

        // A's abandoned searches stop using the database within a few seconds.
        if backend == Backend::Postgres {
            let busy = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                        AND state = 'active' AND pid <> pg_backend_pid()";
            let db = app.db();
            let idle = eventually(Duration::from_secs(5), || async move { db.scalar(busy).await.unwrap() == 0 }).await;
            assert!(idle, "statements still running: {}", db.scalar(busy).await.unwrap());
        }
        // A's own turns are given back: its cheap request goes through again.
        let cheap = || async { app.client.get(app.url("/Users?count=1")).bearer_auth(&app.token).send().await };
        let served = eventually(Duration::from_secs(10), || async { cheap().await.unwrap().status() == 200 }).await;
        assert!(served, "A's turns were not given back");
    }

    fn urlencode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_flooding_the_database_does_not_slow_another_sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_flooding_the_database_does_not_slow_another_postgres() {
        run(Backend::Postgres).await;
    }
}

mod body_memory {
    use super::*;

    /// Bodies beyond the memory budget wait, and past the wait are refused with 503 and
    /// `Retry-After`; memory is given back when a request is answered; a body that could never fit
    /// is refused at once.
    async fn run(backend: Backend) {
        let Some(app) = spawn_app_with(backend, |s| {
            s.body_memory_bytes = 256 * 1024;
            s.body_memory_wait_ms = 300;
        })
        .await
        else {
            return;
        };
        // A client that announces a 200 KiB body and is slow to send it holds that much of the
        // budget while it does.
        let address = app.address.trim_start_matches("http://").to_owned();
        let mut slow = std::net::TcpStream::connect(&address).unwrap();
        let head = format!(
            "POST /scim/v2/{}/Users HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{{",
            app.org,
            app.token,
            200 * 1024
        );
        slow.write_all(head.as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;

        let body = json!({"schemas": [USER], "userName": "x", "title": "t".repeat(60 * 1024)});
        let response = app.post("/Users", &body).await;
        assert_eq!(response.headers()["retry-after"], "1");
        assert_scim_error(response, 503, None).await;
        // Small bodies still fit beside it.
        assert_eq!(app.post("/Users", &json!({"schemas": [USER], "userName": "small"})).await.status(), 201);

        // The slow client finishes (with a body that does not parse): its memory is given back.
        let answer = tokio::task::spawn_blocking(move || {
            slow.write_all(&vec![b' '; 200 * 1024 - 1]).unwrap();
            slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut answer = vec![0u8; 12];
            slow.read_exact(&mut answer).unwrap();
            answer
        })
        .await
        .unwrap();
        assert!(String::from_utf8_lossy(&answer).ends_with("400"), "{}", String::from_utf8_lossy(&answer));
        assert_eq!(app.post("/Users", &body).await.status(), 201);

        // Thousands of tiny values in a few KiB would parse into more than the whole budget.
        let zeros = vec![0; 2000];
        let body = json!({"schemas": [USER], "userName": "y", "emails": zeros});
        let error = assert_scim_error(app.post("/Users", &body).await, 400, Some("tooMany")).await;
        assert!(error["detail"].as_str().unwrap().contains("JSON values"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_beyond_the_memory_budget_are_refused_sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_beyond_the_memory_budget_are_refused_postgres() {
        run(Backend::Postgres).await;
    }
}
