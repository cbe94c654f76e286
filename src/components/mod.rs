//! Widgets shared by the dashboard's pages.

pub mod blocks;
pub mod diagram;
pub mod footer;
pub mod header;
pub mod signin;
pub mod task_detail;
pub mod task_table;
pub mod timeline;
