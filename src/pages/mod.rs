//! The dashboard's pages, one per file.

pub mod compare;
pub mod endpoints;
pub mod failures;
pub mod groups;
pub mod lifecycle;
pub mod overview;
