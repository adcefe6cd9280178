//! `scimgate activity`: a tenant's provisioning activity log, newest first.

use domain::{format_rfc3339, Activity, ActivityStore, TenantName};

use super::{open_store, print_json, Output};
use crate::activity::{activity_json, ActivityParams};
use crate::config::Settings;

/// `scimgate activity <org>`: what the tenant's IdP sent and what it was answered.
#[derive(Debug, clap::Args)]
pub struct ActivityArgs {
    tenant: TenantName,
    /// Only requests that ended so: success, client_error or server_error.
    #[arg(long)]
    outcome: Option<String>,
    /// Only requests answered with this HTTP status.
    #[arg(long)]
    status: Option<String>,
    /// Only requests with this method (GET, POST, PUT, PATCH, DELETE).
    #[arg(long)]
    method: Option<String>,
    /// Only requests for this resource type (user, group, search, service_provider_config,
    /// resource_type, schema, bulk, me, readiness, other).
    #[arg(long)]
    resource_type: Option<String>,
    /// Only requests at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only requests before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Continue where an earlier listing stopped (the cursor it printed).
    #[arg(long)]
    cursor: Option<String>,
    /// Print at most this many records (1 to 1000, default 100).
    #[arg(long)]
    limit: Option<String>,
}

impl ActivityArgs {
    /// The tenant whose activity is printed, for error messages.
    pub fn tenant(&self) -> &TenantName {
        &self.tenant
    }
}

const HEADER: [&str; 10] =
    ["TIME", "METHOD", "RESOURCE", "ID", "STATUS", "SCIM TYPE", "LATENCY", "IDP", "CREDENTIAL", "DETAIL"];

pub async fn activity(args: ActivityArgs, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let tenant = args.tenant.clone();
    let params = ActivityParams {
        outcome: args.outcome,
        status: args.status,
        method: args.method,
        resource_type: args.resource_type,
        since: args.since,
        until: args.until,
        cursor: args.cursor,
        limit: args.limit,
    };
    let query = params.query().map_err(anyhow::Error::msg)?;
    let store = open_store(settings).await?;
    let page = store.list_activity(&tenant, &query).await?;
    match output {
        Output::Json => print_json(&page.items.iter().map(activity_json).collect::<Vec<_>>()),
        Output::Table => print!("{}", table(&page.items)),
    }
    if let Some(next) = page.next_cursor {
        // On stderr, so that the listing itself stays one table or one JSON array.
        eprintln!("more: run again with --cursor {next}");
    }
    Ok(())
}

/// The records as columns aligned under a header; the detail, of any length, comes last.
fn table(items: &[Activity]) -> String {
    let rows: Vec<[String; 10]> = items.iter().map(row).collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_owned);
    for cells in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(activity: &Activity) -> [String; 10] {
    let r = &activity.record;
    let or_dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
    [
        format_rfc3339(r.at),
        r.method.as_str().to_owned(),
        r.resource_type.as_str().to_owned(),
        or_dash(r.resource_id.as_deref()),
        r.status.to_string(),
        or_dash(r.scim_type.as_deref()),
        format!("{:.1} ms", r.latency_us as f64 / 1000.0),
        r.idp.map_or("other", |idp| idp.as_str()).to_owned(),
        r.credential.as_ref().map_or_else(|| "-".to_owned(), |c| format!("{} {}", c.kind(), c.id())),
        or_dash(r.detail.as_deref()),
    ]
}
