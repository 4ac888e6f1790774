//! Set-up shared by the store-level benchmarks: a province-31 node on a fresh SQLite database
//! in a temporary directory, with its signing key, and a typical report.

use std::sync::Arc;

use lapor_node::config::Settings;
use lapor_node::crypto::keys::NodeKey;
use lapor_node::db::Db;
use lapor_node::domain::{Category, Channel, Privacy, RegionCode, ReportKind};
use lapor_node::tickets::{Contact, NewReport, Tickets};

/// A node for a benchmark; the directory lives as long as this value.
pub struct BenchNode {
    pub db: Db,
    pub key: Arc<NodeKey>,
    pub tickets: Tickets,
    _dir: tempfile::TempDir,
}

/// `BENCH_N` from the environment, or `default`.
pub fn bench_n(default: usize) -> usize {
    std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Starts a node's storage (no HTTP).
pub fn node() -> BenchNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let settings = Settings::from_toml(&text).expect("settings");
    let db = lapor_node::app::open_database(&settings).expect("db");
    let key =
        lapor_node::event_log::keys::load_or_create(&db, settings.node_id(), &settings.key_path())
            .expect("key");
    let tickets = Tickets::new(db.clone(), &settings, key.clone()).expect("tickets");
    BenchNode {
        db,
        key,
        tickets,
        _dir: dir,
    }
}

/// A street-light complaint with the reporter's contact.
pub fn report() -> NewReport {
    NewReport {
        kind: ReportKind::Pengaduan,
        title: "Lampu jalan mati".into(),
        text: "Lampu penerangan jalan di depan sekolah mati sejak tiga hari.".into(),
        category: Category::parse("infrastruktur").expect("category"),
        region: RegionCode::parse("3171").expect("region"),
        agency: None,
        channel: Channel::Web,
        privacy: Privacy::default(),
        contact: Some(Contact {
            name: Some("Warga".into()),
            phone: Some("+628123456789".into()),
            email: None,
        }),
    }
}
