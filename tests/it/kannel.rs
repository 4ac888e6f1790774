//! End to end through a real Kannel (bearerbox, smsbox, fakesmsc as child processes on
//! loopback, `lapor_node::demo::kannel`) in front of the in-process federation: a citizen in
//! NTT files by SMS and gets the tracking code back by SMS; `CEK` answers; the ticket is
//! forwarded to a Jakarta agency and the officer's response made at the Jakarta node reaches
//! the phone; the gateway stopped mid-way delays a notice but loses nothing; a resent inbound
//! message files nothing twice. Without the Kannel binaries the test fails, unless
//! `LAPOR_SKIP_KANNEL=1` (CI installs them: `.ci/install-kannel`).

use std::time::Duration;

use lapor_node::demo::cluster::{Cluster, Options};
use lapor_node::demo::kannel::{self, Kannel, Ports};
use lapor_node::demo::scenario::{AGENCY, JAKARTA, NTT};
use lapor_node::domain::{Actor, AgencyCode, Role, TicketId, Timestamp};
use lapor_node::tickets::Action;

use crate::federation::{node, specs};

const SECRET: &str = "kanneltestsecret0123456789";
const PHONE: &str = "081234567890";
const PHONE_INTL: &str = "+6281234567890";
const WAIT: Duration = Duration::from_secs(30);

/// Kannel is there, or the test may be skipped on purpose.
pub fn kannel_or_skip() -> bool {
    if kannel::installed() {
        return true;
    }
    assert!(
        std::env::var("LAPOR_SKIP_KANNEL").as_deref() == Ok("1"),
        "{}",
        kannel::INSTALL_HINT
    );
    eprintln!("Kannel tests skipped (LAPOR_SKIP_KANNEL=1)");
    false
}

fn officer(role: Role, agency: Option<&str>) -> Actor {
    Actor {
        role,
        officer: Some("petugas".into()),
        agency: agency.map(|a| AgencyCode::parse(a).unwrap()),
    }
}

fn sms_rows(c: &Cluster, id: &str) -> Vec<lapor_node::sms::model::OutRow> {
    let mut conn = node(c, id).state.tickets.db().read().unwrap();
    lapor_node::sms::store::all(&mut conn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_through_kannel_files_tracks_and_hears_back_from_another_province() {
    if !kannel_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = crate::helpers::postgres();
    let ports = Ports::free().unwrap();
    let opts = Options {
        extra_toml: kannel::node_toml(&ports, SECRET),
        ..Options::default()
    };
    let c = Cluster::start(dir.path(), &specs(pg.as_ref()), &opts)
        .await
        .unwrap();
    let ntt = node(&c, NTT);
    let port: u16 = ntt.api.rsplit(':').next().unwrap().parse().unwrap();
    let mut k = Kannel::start(
        &dir.path().join("kannel"),
        ports,
        port,
        SECRET,
        Duration::from_secs(300),
    )
    .unwrap();

    // Filed by SMS: the tracking code comes back by SMS.
    k.send(
        PHONE,
        "LAPOR Puskesmas desa tutup sejak senin, obat habis #kesehatan",
    )
    .unwrap();
    let filed = k
        .wait_for(WAIT, |d| d.to == PHONE_INTL && d.text.contains("Kode: "))
        .expect("the tracking code by SMS");
    let at = filed.text.find("Kode: ").unwrap() + 6;
    let code = filed.text[at..at + 12].to_owned();
    assert!(code.starts_with("53-"), "{}", filed.text);
    let t = &ntt.state.tickets;
    let report = t.find_by_phone(&code.parse_code(), PHONE_INTL).unwrap();
    let ticket = TicketId::parse(&report.ticket.id).unwrap();
    assert_eq!(report.ticket.channel, "sms");

    // The same message sent again by the gateway (same SMSC and message id) files nothing.
    let key = {
        use diesel::prelude::*;
        use lapor_node::db::schema::sms_inbound;
        let mut conn = t.db().read().unwrap();
        sms_inbound::table
            .select(sms_inbound::message_key)
            .first::<String>(&mut conn)
            .unwrap()
    };
    let (smsc, id) = key.split_once(':').unwrap();
    let resent = reqwest::Client::new()
        .get(format!("{}/sms/kannel", ntt.api))
        .query(&[
            ("secret", SECRET),
            ("from", PHONE),
            (
                "text",
                "LAPOR Puskesmas desa tutup sejak senin, obat habis #kesehatan",
            ),
            ("id", id),
            ("smsc", smsc),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resent.status(), 200);
    assert_eq!(
        resent.json::<serde_json::Value>().await.unwrap()["outcome"],
        "duplicate"
    );
    assert_eq!(crate::federation::count(ntt, "tickets"), 1);

    // CEK answers the current status.
    k.send(PHONE, &format!("cek {code}")).unwrap();
    k.wait_for(WAIT, |d| d.text.contains("menunggu verifikasi"))
        .expect("CEK answered");

    // Forwarded to a Jakarta agency; the officer at the Jakarta node responds.
    let verifier = officer(Role::Verifier, None);
    t.act(&ticket, &verifier, Action::Verify, Timestamp::now())
        .unwrap();
    let dispatch = Action::Dispatch {
        agency: AgencyCode::parse(AGENCY).unwrap(),
    };
    t.act(&ticket, &verifier, dispatch, Timestamp::now())
        .unwrap();
    k.wait_for(WAIT, |d| d.text.contains("untuk ditindaklanjuti"))
        .expect("forwarded notice");
    c.settle(10).await.unwrap();
    let jkt = &node(&c, JAKARTA).state.tickets;
    let liaison = officer(Role::Liaison, Some(AGENCY));
    jkt.act(&ticket, &liaison, Action::Start, Timestamp::now())
        .unwrap();
    let answer = "Layanan dibuka kembali hari Kamis; obat sudah dikirim dari Kupang.";
    jkt.act(
        &ticket,
        &liaison,
        Action::Respond {
            message: answer.into(),
        },
        Timestamp::now(),
    )
    .unwrap();
    c.settle(10).await.unwrap();
    let heard = k
        .wait_for(WAIT, |d| d.text.contains("Tanggapan untuk"))
        .expect("the response made in Jakarta reaches the phone");
    assert!(heard.text.contains(answer), "{}", heard.text);

    // The gateway stops mid-way: the next notice waits, and arrives once it is back.
    k.stop_smsbox();
    jkt.act(
        &ticket,
        &liaison,
        Action::Resolve {
            message: "Selesai.".into(),
        },
        Timestamp::now(),
    )
    .unwrap();
    c.settle(10).await.unwrap();
    let until = std::time::Instant::now() + WAIT;
    while !sms_rows(&c, NTT)
        .iter()
        .any(|r| r.kind == "resolved" && r.attempts > 0)
    {
        assert!(std::time::Instant::now() < until, "the sender never tried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(k.delivered().iter().all(|d| !d.text.contains("selesai:")));
    k.restart_smsbox().unwrap();
    k.wait_for(WAIT, |d| d.text.contains("selesai:"))
        .expect("the notice queued while the gateway was down");

    // A long message in two parts (as a phone sends it): joined by the gateway, filed once.
    k.send_parts(
        "081298765432",
        42,
        &[
            "LAPOR Jembatan gantung di desa kami putus sejak banjir minggu lalu, ",
            "anak-anak tidak bisa ke sekolah #infrastruktur",
        ],
    )
    .unwrap();
    let got = k
        .wait_for(WAIT, |d| {
            d.to == "+6281298765432" && d.text.contains("Kode: ")
        })
        .expect("the code for the report sent in two parts");
    let at = got.text.find("Kode: ").unwrap() + 6;
    let joined = t.find_report(&got.text[at..at + 12], None, false).unwrap();
    assert!(
        joined
            .ticket
            .body
            .contains("minggu lalu, anak-anak tidak bisa"),
        "{}",
        joined.ticket.body
    );

    // Every message went out once; nothing is left.
    let rows = sms_rows(&c, NTT);
    assert!(rows.iter().all(|r| r.state == "sent"), "{rows:?}");
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "filed",
            "answer",
            "verified",
            "forwarded",
            "responded",
            "resolved",
            "filed"
        ]
    );
    assert!(
        sms_rows(&c, JAKARTA).is_empty(),
        "only the origin holds the number and sends"
    );
    drop(k);
    c.shutdown().await;
}

trait ParseCode {
    fn parse_code(&self) -> lapor_node::domain::TrackingCode;
}

impl ParseCode for String {
    fn parse_code(&self) -> lapor_node::domain::TrackingCode {
        lapor_node::domain::TrackingCode::parse(self).unwrap()
    }
}
