//! Entry point of the dashboard in the browser: installs the panic hook, removes the page's
//! loading placeholder, then mounts the app.

fn main() {
    console_error_panic_hook::set_once();
    // The page's placeholder, shown while this code loaded, gives way to the app.
    if let Some(placeholder) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("loading"))
    {
        placeholder.remove();
    }
    leptos::mount::mount_to_body(lifeline_dashboard::App);
}
