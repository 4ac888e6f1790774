//! The console in a real headless Chromium, driven over WebDriver (`fantoccini` talking to a
//! `chromedriver` child process on a free loopback port), across the in-process federation:
//! a citizen in NTT files a report about a Jakarta agency and gets the receipt; NTT's
//! verifier logs in, verifies and dispatches it to the Jakarta agency; at the Jakarta node the
//! agency's liaison starts and responds; back at NTT the citizen sees the response.
//!
//! Without Chromium the test is skipped with a message — unless `LAPOR_REQUIRE_BROWSER` is set
//! (CI sets it), when a missing browser fails it. With `LAPOR_SCREENSHOTS=<dir>` it saves a
//! screenshot of each main page there (the ones in `docs/screenshots/` came from it).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use lapor_node::demo::cluster::{Cluster, Options};
use lapor_node::demo::scenario::{AGENCY, JAKARTA, NTT};
use lapor_node::domain::{AgencyCode, Role, Timestamp};
use serde_json::json;

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// `chromedriver` as a child process, killed on drop.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(driver: &std::path::Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn browser(driver: &Driver, chromium: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium.display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,1300", "--lang=id-ID"],
            "prefs": {"intl.accept_languages": "id-ID,id"},
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

struct Shots(Option<PathBuf>);

impl Shots {
    async fn take(&self, b: &Client, name: &str) {
        if let Some(dir) = &self.0 {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(
                dir.join(format!("{name}.png")),
                b.screenshot().await.unwrap(),
            )
            .unwrap();
        }
    }
}

async fn fill(b: &Client, css: &str, text: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn pick(b: &Client, css: &str, value: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

/// Clicks what submits a form or follows a link, and waits until the next page replaced this
/// one (the old document's root goes stale).
async fn click(b: &Client, css: &str) {
    let old = b.find(Locator::Css("html")).await.unwrap();
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} loaded no new page within 10 s");
}

async fn text(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn log_in(b: &Client, base: &str, name: &str) {
    b.goto(&format!("{base}/petugas/masuk")).await.unwrap();
    fill(b, "#username", name).await;
    fill(b, "#password", "demo password 2026").await;
    click(b, "form[action='/petugas/masuk'] button").await;
}

async fn account(c: &Cluster, node: &str, name: &str, role: Role, agency: Option<&str>) {
    let auth = c.node(node).unwrap().state.auth.clone();
    let (name, agency) = (
        name.to_owned(),
        agency.map(|a| AgencyCode::parse(a).unwrap()),
    );
    tokio::task::spawn_blocking(move || {
        auth.add(&name, "demo password 2026", role, agency, Timestamp::now())
    })
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_crosses_the_federation_by_clicking_in_a_real_browser() {
    let (Some(driver_bin), Some(chromium)) = (
        on_path(&["chromedriver"]),
        on_path(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        assert!(
            std::env::var_os("LAPOR_REQUIRE_BROWSER").is_none(),
            "LAPOR_REQUIRE_BROWSER is set but chromium or chromedriver is not on PATH"
        );
        eprintln!(
            "browser test skipped: chromium and chromedriver are not installed (.ci/install-chromium installs them)"
        );
        return;
    };
    let shots = Shots(std::env::var_os("LAPOR_SCREENSHOTS").map(PathBuf::from));
    let dir = tempfile::tempdir().unwrap();
    let pg = crate::helpers::postgres();
    let c = Cluster::start(
        dir.path(),
        &crate::federation::specs(pg.as_ref()),
        &Options::default(),
    )
    .await
    .unwrap();
    let (ntt, jkt) = (
        c.node(NTT).unwrap().api.clone(),
        c.node(JAKARTA).unwrap().api.clone(),
    );
    let driver = start_driver(&driver_bin).await;
    let b = browser(&driver, &chromium).await;

    // 1. The citizen files at NTT and gets the receipt.
    b.goto(&format!("{ntt}/")).await.unwrap();
    assert_eq!(
        b.find(Locator::Css("html"))
            .await
            .unwrap()
            .attr("lang")
            .await
            .unwrap()
            .as_deref(),
        Some("id")
    );
    shots.take(&b, "1-lapor").await;
    fill(&b, "#title", "KTP-el belum dipindahkan").await;
    fill(
        &b,
        "#body",
        "Data saya masih tercatat di Jakarta <b>sejak Maret</b>.",
    )
    .await;
    pick(&b, "#category", "kependudukan").await;
    pick(&b, "#region", "5371").await;
    pick(&b, "#agency", AGENCY).await;
    fill(&b, "#name", "Maria Bria").await;
    fill(&b, "#phone", "+6281234567890").await;
    click(&b, "form[action='/lapor'] button").await;
    let code = text(&b, "#kode").await;
    let token = text(&b, "#token").await;
    assert!(code.starts_with("53-"), "receipt shows {code:?}");
    assert!(token.len() >= 20);
    shots.take(&b, "2-tanda-terima").await;

    // 2. NTT's verifier logs in, finds it in the inbox, verifies and dispatches to Jakarta.
    account(&c, NTT, "v.ntt", Role::Verifier, None).await;
    log_in(&b, &ntt, "v.ntt").await;
    shots.take(&b, "3-kotak-masuk").await;
    assert!(
        text(&b, "table").await.contains(&code),
        "the inbox lists the report"
    );
    click(&b, "a[href^='/petugas/tiket/']").await;
    click(&b, "button[value='verify']").await;
    assert_eq!(
        text(&b, "#status").await.split_whitespace().next(),
        Some("Terverifikasi")
    );
    pick(&b, "#f-dispatch", AGENCY).await;
    shots.take(&b, "4-tiket-petugas").await;
    click(&b, "button[value='dispatch']").await;
    assert!(
        text(&b, "#handler").await.contains(JAKARTA),
        "dispatched to the Jakarta node"
    );
    c.settle(10).await.unwrap();

    // 3. At Jakarta the agency's liaison starts and responds.
    account(&c, JAKARTA, "l.dki", Role::Liaison, Some(AGENCY)).await;
    log_in(&b, &jkt, "l.dki").await;
    assert!(
        text(&b, "table").await.contains(&code),
        "the inbox lists the report"
    );
    click(&b, "a[href^='/petugas/tiket/']").await;
    assert!(
        b.source().await.unwrap().contains("Maria Bria"),
        "the handling liaison sees the reporter"
    );
    click(&b, "button[value='start']").await;
    fill(
        &b,
        "#f-respond",
        "Data Anda sudah kami pindahkan ke Kupang.",
    )
    .await;
    click(&b, "button[value='respond']").await;
    assert_eq!(
        text(&b, "#status").await.split_whitespace().next(),
        Some("Ditanggapi")
    );
    c.settle(10).await.unwrap();

    // 4. Back at NTT the citizen sees the response.
    b.goto(&format!("{ntt}/lacak")).await.unwrap();
    fill(&b, "#kode2", &code).await;
    fill(&b, "#token", &token).await;
    click(&b, "form[action='/lacak/lihat'] button").await;
    assert_eq!(text(&b, "#status").await, "Ditanggapi");
    let timeline = text(&b, "#riwayat").await;
    assert!(
        timeline.contains("Data Anda sudah kami pindahkan ke Kupang."),
        "{timeline}"
    );
    assert!(
        !b.source().await.unwrap().contains("<b>sejak"),
        "the report text is escaped"
    );
    shots.take(&b, "5-lacak").await;

    // 5. The hub's dashboard counts it.
    let hub = c.node(lapor_node::demo::scenario::HUB).unwrap().api.clone();
    b.goto(&format!("{hub}/nasional")).await.unwrap();
    assert_eq!(text(&b, "#total").await, "1");
    assert!(text(&b, "#per-status").await.contains("Ditanggapi"));
    shots.take(&b, "6-nasional").await;

    b.close().await.unwrap();
    drop(driver);
    c.shutdown().await;
}
