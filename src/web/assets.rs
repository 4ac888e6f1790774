//! The console's one embedded asset: its style sheet (no scripts, fonts or images, nothing
//! from another site). Served with a day's caching; the path carries a version so a new
//! binary's sheet is fetched at once.

use actix_web::HttpResponse;

/// The style sheet.
pub const CSS: &str = include_str!("../../assets/console.css");

/// Where pages link it (bump the version when the sheet changes).
pub const CSS_PATH: &str = "/aset/konsol-1.css";

/// `GET /aset/konsol-1.css`.
pub async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(CSS)
}
