//! What every page shares: the frame around its content, and rendering.

use actix_web::http::header;
use actix_web::HttpResponse;
use askama::Template;

use super::{Area, WebError};

/// One entry of an area's navigation.
pub struct NavItem {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

/// The frame of a page: title, navigation, and the sign-out form of a signed-in page.
pub struct Frame {
    pub title: String,
    pub base: &'static str,
    pub area_name: &'static str,
    /// The tenant a portal page is about.
    pub tenant: Option<String>,
    pub nav: Vec<NavItem>,
    /// The session's CSRF token, for the forms of a signed-in page.
    pub csrf: Option<String>,
}

const PORTAL_NAV: [(&str, &str); 5] = [
    ("", "Overview"),
    ("/steps", "Connect your IdP"),
    ("/credential", "Credential"),
    ("/organizations", "Organizations"),
    ("/activity", "Activity"),
];

impl Frame {
    /// A page of `area` that nobody is signed in to (yet).
    pub fn anonymous(area: Area, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            base: area.base(),
            area_name: area_name(area),
            tenant: None,
            nav: Vec::new(),
            csrf: None,
        }
    }

    /// A page of a tenant's setup portal; `current` is its path below `/portal`.
    pub fn portal(title: impl Into<String>, tenant: &str, csrf: &str, current: &str) -> Self {
        let nav = PORTAL_NAV
            .iter()
            .map(|(path, label)| NavItem { href: format!("/portal{path}"), label, current: *path == current })
            .collect();
        Self {
            title: title.into(),
            base: Area::Portal.base(),
            area_name: area_name(Area::Portal),
            tenant: Some(tenant.to_owned()),
            nav,
            csrf: Some(csrf.to_owned()),
        }
    }

    /// A page of the operator console.
    pub fn console(title: impl Into<String>, csrf: &str) -> Self {
        let nav = vec![NavItem { href: "/console".into(), label: "Tenants", current: false }];
        Self {
            title: title.into(),
            base: Area::Console.base(),
            area_name: area_name(Area::Console),
            tenant: None,
            nav,
            csrf: Some(csrf.to_owned()),
        }
    }
}

fn area_name(area: Area) -> &'static str {
    match area {
        Area::Portal => "setup portal",
        Area::Console => "operator console",
    }
}

/// A rendered page, `200 OK`.
pub fn html(page: &impl Template) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8")).body(page.render()?))
}
