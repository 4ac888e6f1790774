//! Test databases and settings.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use lapor_node::config::{DatabaseUrl, Settings};
use lapor_node::db::Db;
use lapor_node::domain::{Actor, AgencyCode, Role, Timestamp};
use lapor_node::tickets::Tickets;

/// One test database, removed on drop.
pub struct TestDb {
    pub name: &'static str,
    pub url: String,
    _dir: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, db)) = &self.pg_drop {
            if let Ok(mut c) = PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&mut c);
            }
        }
    }
}

impl TestDb {
    /// The database's name on the PostgreSQL server (PostgreSQL only).
    pub fn name_in_server(&self) -> &str {
        &self.pg_drop.as_ref().unwrap().1
    }
}

pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lapor.sqlite").display());
    TestDb {
        name: "sqlite",
        url,
        _dir: dir,
        pg_drop: None,
    }
}

/// A fresh SQLite database in its own directory that starts as a copy of `db`'s file alone
/// (without its `-wal` log) and its signing key, as a restore by file copy would.
pub fn sqlite_copy_of(db: &TestDb) -> TestDb {
    let copy = sqlite();
    let (from, to) = (db._dir.path(), copy._dir.path());
    std::fs::copy(from.join("lapor.sqlite"), to.join("lapor.sqlite")).unwrap();
    std::fs::create_dir_all(to.join("keys")).unwrap();
    for f in std::fs::read_dir(from.join("keys")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join("keys").join(f.file_name())).unwrap();
    }
    copy
}

static PG_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh PostgreSQL database, or `None` (with a message) when `LAPOR_TEST_PG_URL` is unset.
/// With the variable set, an unreachable server fails the test.
pub fn postgres() -> Option<TestDb> {
    let Ok(admin) = std::env::var("LAPOR_TEST_PG_URL") else {
        eprintln!("PostgreSQL tests skipped: LAPOR_TEST_PG_URL is not set");
        return None;
    };
    let mut c = PgConnection::establish(&admin)
        .unwrap_or_else(|e| panic!("LAPOR_TEST_PG_URL is set but PostgreSQL is unreachable: {e}"));
    let name = format!(
        "lapor_test_{}_{}_{}",
        std::process::id(),
        PG_COUNTER.fetch_add(1, Ordering::SeqCst),
        rand_suffix()
    );
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    Some(TestDb {
        name: "postgres",
        url: url.to_string(),
        _dir: tempfile::tempdir().unwrap(),
        pg_drop: Some((admin, name)),
    })
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000
}

/// SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<TestDb> {
    let mut v = vec![sqlite()];
    v.extend(postgres());
    v
}

/// Settings for a province-31 node on this database. `extra` is appended TOML.
pub fn settings(db: &TestDb, extra: &str) -> Settings {
    settings_at(db, &db.url, "", extra)
}

/// Settings for a province-31 node with `db`'s data directory (keys) and the database at
/// `url` (such as `db`'s through a proxy). `database` holds extra lines of `[database]`;
/// `extra` is appended TOML.
pub fn settings_at(db: &TestDb, url: &str, database: &str, extra: &str) -> Settings {
    let text = format!(
        "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = {dir:?}\n\
         [database]\nurl = {url:?}\npool_size = 4\n{database}\n{extra}",
        dir = db._dir.path().display().to_string(),
    );
    Settings::from_toml(&text).unwrap()
}

/// A migrated node database with its ticket commands.
pub fn tickets(db: &TestDb) -> Tickets {
    let s = settings(db, "");
    let database = lapor_node::app::open_database(&s).unwrap();
    let key =
        lapor_node::event_log::keys::load_or_create(&database, s.node_id(), &s.key_path()).unwrap();
    Tickets::new(database, &s, key).unwrap()
}

pub fn open(db: &TestDb) -> Db {
    let s = settings(db, "");
    Db::open(&s.database, 2).unwrap()
}

pub fn is_pg(db: &TestDb) -> bool {
    matches!(settings(db, "").database, DatabaseUrl::Postgres(_))
}

pub fn verifier() -> Actor {
    Actor {
        role: Role::Verifier,
        officer: Some("verif1".into()),
        agency: None,
    }
}

pub fn liaison(agency: &str) -> Actor {
    Actor {
        role: Role::Liaison,
        officer: Some("liaison1".into()),
        agency: Some(AgencyCode::parse(agency).unwrap()),
    }
}

/// Monday 2026-11-30 09:00 WIB.
pub fn monday_morning() -> Timestamp {
    Timestamp::parse("2026-11-30T02:00:00.000Z").unwrap()
}

pub const DAY_MS: i64 = 86_400_000;
