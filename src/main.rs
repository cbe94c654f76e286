//! Entry point of the dashboard in the browser: installs the panic hook, then mounts the app.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(lifeline_dashboard::App);
}
