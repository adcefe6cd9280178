//! The SCIM 2.0 wire model (RFC 7643 / RFC 7644) and its grammars.
//!
//! Everything here is pure: no I/O, no database, no HTTP. The edge parses requests with these
//! types, the domain translates the filter AST to SQL and applies PATCH documents with them.
#![forbid(unsafe_code)]

mod attr_path;
pub mod error;
pub mod filter;
pub mod patch;
pub mod path;
pub mod profile;
pub mod projection;
pub mod render;
pub mod resource;
pub mod schema;
mod value;
pub mod wire;

pub use error::{Error, ErrorKind};
pub use filter::{AttrPath, CompValue, CompareOp, Filter};
pub use patch::{MemberOp, PatchOp, PatchOperation, PatchOutcome};
pub use path::PatchPath;
pub use profile::{GroupPatchAnswer, IdpProfile};
pub use schema::{AttrDef, AttrType, Resolved, ResourceKind};
