//! Widgets shared by the dashboard's views.

pub mod diagram;
