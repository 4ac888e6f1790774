//! `/nasional`: the statistics dashboard — its public part without login, the rest for
//! analysts and admins, charts as SVG.

use lapor_node::domain::Role;
use reqwest::StatusCode;

use crate::helpers;
use crate::web::{Client, file, node, report_form};

#[tokio::test]
async fn the_dashboard_shows_counts_as_svg_and_the_details_only_to_analysts() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        for title in ["Satu", "Dua", "Tiga"] {
            file(&c, &report_form(title, "isi", "Budi")).await;
        }
        let public = c.get("/nasional").await;
        assert_eq!(public.status, StatusCode::OK);
        assert_eq!(public.by_id("total").as_deref(), Some("3"), "{}", db.name);
        assert!(public.body.contains("<svg id=\"per-status\""));
        assert!(public.body.contains("Belum diverifikasi"));
        assert!(
            !public.body.contains("id=\"per-instansi\""),
            "agencies are for analysts"
        );
        assert!(
            !public.body.contains("Satu"),
            "no report text on the dashboard"
        );
        // The national part, from the statistics kept with each event: three reports of this
        // province are below the public threshold (k = 5), so they show as "<5".
        assert!(
            public.body.contains("<svg id=\"per-provinsi\""),
            "{}",
            db.name
        );
        let provinces = &public.body[public.body.find("id=\"per-provinsi\"").unwrap()..];
        assert!(provinces.contains("&lt;5"), "{}", db.name);
        assert!(
            !public.body.contains("id=\"aliran\""),
            "flows are for analysts"
        );
        let analyst = Client::new(&c.base);
        crate::web_officers::login(&n.app_state, &analyst, "analis.web", Role::Analyst, None).await;
        let full = analyst.get("/nasional").await;
        // Analysts see exact figures, the flows table and the open backlog by age.
        let provinces = &full.body[full.body.find("id=\"per-provinsi\"").unwrap()..];
        assert!(provinces.contains(">3<"), "{}", db.name);
        assert!(full.body.contains("id=\"aliran\"") && full.body.contains("id=\"umur\""));
        assert!(full.body.contains("id=\"sla-instansi\""));
        assert!(full.body.contains("id=\"per-instansi\""));
        assert!(full.body.contains("id=\"per-kategori\""));
        assert!(full.body.contains("transportasi"));
        // A verifier sees the public part only.
        let verifier = Client::new(&c.base);
        crate::web_officers::login(&n.app_state, &verifier, "v.dash", Role::Verifier, None).await;
        assert!(
            !verifier
                .get("/nasional")
                .await
                .body
                .contains("id=\"per-instansi\"")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_the_federation_peers_and_quarantine() {
    use lapor_node::demo::scenario::{HUB, JAKARTA, NTT};
    let dir = tempfile::tempdir().unwrap();
    let c = crate::federation::cluster(dir.path(), None).await;
    let ntt = c.node(NTT).unwrap();
    let admin = Client::new(&ntt.api);
    crate::web_officers::login(&ntt.state, &admin, "admin.ntt", Role::Admin, None).await;
    let page = admin.get("/petugas/federasi").await;
    assert_eq!(page.status, StatusCode::OK);
    let peers = &page.body[page.body.find("id=\"peers\"").unwrap()..];
    assert!(
        peers.contains(HUB) && peers.contains(JAKARTA),
        "{}",
        page.body
    );
    assert!(page.body.contains("Tidak ada event yang dikarantina"));
    // Not for a verifier.
    let v = Client::new(&ntt.api);
    crate::web_officers::login(&ntt.state, &v, "v.fed", Role::Verifier, None).await;
    assert_eq!(
        v.get("/petugas/federasi").await.status,
        StatusCode::FORBIDDEN
    );
    // The hub's dashboard: the federation's health for analysts, not for the public.
    let hub = c.node(HUB).unwrap();
    let analyst = Client::new(&hub.api);
    crate::web_officers::login(&hub.state, &analyst, "analis.hub", Role::Analyst, None).await;
    let dash = analyst.get("/nasional").await;
    let health = &dash.body[dash.body.find("id=\"kesehatan\"").unwrap()..];
    assert!(health.contains(NTT) && health.contains(JAKARTA));
    // Each member's signed status, beside what the hub holds, in the per-node section.
    ntt.federation
        .send_status(ntt.state.tickets.signing_key())
        .await
        .unwrap();
    let dash = analyst.get("/nasional").await;
    let nodes = &dash.body[dash.body.find("id=\"node-federasi\"").unwrap()..];
    let row = &nodes[nodes.find(&format!("<td>{NTT}</td>")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(env!("CARGO_PKG_VERSION")), "{row}");
    assert!(row.contains(&format!("{HUB}: 0")), "{row}");
    assert!(dash.body.contains("id=\"peringatan\""), "{}", dash.body);
    let (status, bytes, _) = analyst.weight("/nasional", "gzip").await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes <= 60 * 1024, "/nasional weighs {bytes} bytes");
    let public = Client::new(&hub.api).get("/nasional").await.body;
    assert!(!public.contains("id=\"kesehatan\"") && !public.contains("id=\"node-federasi\""));
    c.shutdown().await;
}
