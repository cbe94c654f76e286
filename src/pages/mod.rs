//! The dashboard's pages, one per file.

pub mod endpoints;
pub mod lifecycle;
pub mod overview;
