//! The product's accounts, which SCIM users link to, and users as the product reads them: one
//! account at a time or thousands per call, and users by id, email or linked account, so the
//! product never needs a SCIM token.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::{format_rfc3339, AccountId, LinkedUser, ProductAccount, UserLookup, MAX_ACCOUNTS_PER_CALL};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{json_body_limited, tenant_name, AdminError, Operator};
use crate::state::AppState;

/// Largest body of a bulk registration: room for the most accounts one call may carry.
const MAX_ACCOUNTS_BODY: usize = 4 * 1024 * 1024;

fn account_id(id: &str) -> Result<AccountId, AdminError> {
    AccountId::parse(id).map_err(|e| AdminError::BadRequest(e.to_string()))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountBody {
    email: Option<String>,
    external_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkAccount {
    id: String,
    email: Option<String>,
    external_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BulkAccounts {
    accounts: Vec<BulkAccount>,
}

#[derive(Debug, Serialize)]
struct AccountView {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    /// The SCIM user linked to it, and what matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Value>,
}

fn account_view(a: &ProductAccount) -> AccountView {
    AccountView {
        id: a.id.to_string(),
        email: a.email.clone(),
        external_id: a.external_id.clone(),
        user: a.user_id.as_ref().map(|id| json!({"id": id, "matched": a.matched.map(|m| m.as_str())})),
    }
}

fn user_view(u: &LinkedUser) -> Value {
    let get = |key: &str| u.data.get(key).cloned();
    let mut view = json!({
        "id": u.id,
        "userName": get("userName"),
        "active": get("active").unwrap_or(Value::Bool(true)),
        "created": format_rfc3339(u.created_at),
        "updated": format_rfc3339(u.updated_at),
    });
    for (key, value) in [("externalId", get("externalId")), ("displayName", get("displayName"))] {
        if let Some(value) = value {
            view[key] = value;
        }
    }
    if let Some(email) = &u.email {
        view["email"] = Value::String(email.clone());
    }
    if let Some(account) = &u.account_id {
        view["product_account"] = json!({"id": account, "matched": u.matched.map(|m| m.as_str())});
    }
    let mut scim = u.data.clone();
    scim["id"] = Value::String(u.id.clone());
    view["scim"] = scim;
    view
}

/// `PUT accounts/{id}`: register one account, or change what links to it.
pub async fn put_account(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let tenant = tenant_name(&org)?;
    let body: AccountBody = json_body_limited(body, super::MAX_BODY).await?;
    let account = ProductAccount::new(account_id(&id)?, body.email.as_deref(), body.external_id.as_deref())
        .map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let registered = state.store.register_accounts(&tenant, std::slice::from_ref(&account)).await?;
    if registered.linked > 0 {
        state.deliveries.notify_one();
    }
    let account = state.store.account(&tenant, &account.id).await?;
    let view = account_view(&account);
    Ok(if registered.created > 0 { HttpResponse::Created().json(view) } else { HttpResponse::Ok().json(view) })
}

/// `POST accounts`: register up to 10,000 accounts in one transaction.
pub async fn register_accounts(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: BulkAccounts = json_body_limited(body, MAX_ACCOUNTS_BODY).await?;
    if body.accounts.len() > MAX_ACCOUNTS_PER_CALL {
        return Err(AdminError::BadRequest(format!(
            "{} accounts in one call; at most {MAX_ACCOUNTS_PER_CALL} are accepted",
            body.accounts.len()
        )));
    }
    let accounts = body
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            account_id(&a.id)
                .and_then(|id| {
                    ProductAccount::new(id, a.email.as_deref(), a.external_id.as_deref())
                        .map_err(|e| AdminError::BadRequest(e.to_string()))
                })
                .map_err(|e| AdminError::BadRequest(format!("accounts[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let registered = state.store.register_accounts(&tenant, &accounts).await?;
    if registered.linked > 0 {
        state.deliveries.notify_one();
    }
    Ok(HttpResponse::Ok().json(registered))
}

pub async fn get_account(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let account = state.store.account(&tenant_name(&org)?, &account_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(account_view(&account)))
}

pub async fn delete_account(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    state.store.delete_account(&tenant_name(&org)?, &account_id(&id)?).await?;
    state.deliveries.notify_one();
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    email: Option<String>,
    account: Option<String>,
}

/// `GET users?email=` or `?account=`: the users with that linking email or linked account.
pub async fn find_users(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let query: UserQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| AdminError::BadRequest(format!("query parameters are `email` or `account`: {e}")))?;
    let lookup = match (&query.email, &query.account) {
        (Some(email), None) => UserLookup::Email(email.clone()),
        (None, Some(account)) => UserLookup::Account(account_id(account)?),
        _ => return Err(AdminError::BadRequest("give exactly one of `email` and `account`".into())),
    };
    let users = state.store.find_users(&tenant_name(&org)?, &lookup).await?;
    let views: Vec<Value> = users.iter().map(user_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "users": views })))
}

/// `GET users/{id}`.
pub async fn get_user(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let users = state.store.find_users(&tenant_name(&org)?, &UserLookup::Id(id.clone())).await?;
    let user = users.first().ok_or_else(|| AdminError::NotFound(format!("user `{id}` not found")))?;
    Ok(HttpResponse::Ok().json(user_view(user)))
}
