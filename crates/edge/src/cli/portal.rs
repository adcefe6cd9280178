//! `scimgate portal-link`: setup links that let a customer's IT admin into the setup portal.

use domain::{format_rfc3339, now_micros, PortalStore, TenantName};

use super::{open_store, print_json, Output};
use crate::config::Settings;
use crate::setup_links;

/// `scimgate portal-link <org> [--expires-in 7d]`, `--list` or `--revoke <id>`.
#[derive(Debug, clap::Args)]
pub struct PortalLinkArgs {
    tenant: TenantName,
    /// How long the link works, e.g. 7d (the default) or 12h; at most 30d.
    #[arg(long, conflicts_with_all = ["list", "revoke"])]
    expires_in: Option<String>,
    /// List the tenant's setup links (ids, dates and states; never the secrets) instead.
    #[arg(long, conflicts_with = "revoke")]
    list: bool,
    /// Revoke the setup link with this id, at once, instead.
    #[arg(long, value_name = "ID")]
    revoke: Option<String>,
}

impl PortalLinkArgs {
    /// The tenant the command works on, for error messages.
    pub fn tenant(&self) -> &TenantName {
        &self.tenant
    }
}

pub async fn portal_link(args: PortalLinkArgs, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let tenant = args.tenant.clone();
    if let Some(id) = &args.revoke {
        store.revoke_portal_link(&tenant, id).await?;
        println!("revoked setup link {id} of {tenant}");
        return Ok(());
    }
    if args.list {
        let now = now_micros();
        let links = store.list_portal_links(&tenant).await?;
        if output == Output::Json {
            let rows: Vec<_> = links
                .iter()
                .map(|link| serde_json::to_value(crate::admin::portal_links::view(link, now)))
                .collect::<Result<_, _>>()?;
            print_json(&rows);
            return Ok(());
        }
        println!("ID\tSTATE\tCREATED\tEXPIRES\tUSED");
        for link in links {
            let used = link.used_at.map(format_rfc3339).unwrap_or_else(|| "-".into());
            let (created, expires) = (format_rfc3339(link.created_at), format_rfc3339(link.expires_at));
            println!("{}\t{}\t{created}\t{expires}\t{used}", link.id, link.state(now).as_str());
        }
        return Ok(());
    }
    let expiry = setup_links::expiry(args.expires_in.as_deref())?;
    let issued = setup_links::issue(&store, &tenant, expiry, &settings.public_base()).await?;
    println!("setup link {} for {tenant}, works once until {}", issued.link.id, format_rfc3339(issued.link.expires_at));
    println!("{}", issued.url);
    Ok(())
}
