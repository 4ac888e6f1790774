//! The demo's first report, filed by a real SMS through Kannel (`demo::kannel`) when Kannel is
//! installed; otherwise the demo says how to install it and files over HTTP only.

use std::time::Duration;

use anyhow::Context;

use super::cluster::{Cluster, Options};
use super::kannel::{self, Kannel, Ports};
use super::scenario::NTT;

/// The shared secret between the demo's Kannel and its nodes.
const SECRET: &str = "lapordemokannelsecret";
/// The citizen's phone.
pub const PHONE: &str = "081234567890";

/// Kannel's ports when it is installed (the nodes' `[sms]` goes into `opts`), or `None` with a
/// line saying how to install it.
pub fn prepare(opts: &mut Options, say: &mut dyn FnMut(&str)) -> Option<Ports> {
    if !kannel::installed() {
        say(
            "SMS: Kannel is not installed, so the first report is filed over HTTP only. To file it by a real SMS: `apt-get install kannel kannel-extras` (or .ci/install-kannel), then run the demo again.",
        );
        return None;
    }
    let ports = Ports::free().ok()?;
    opts.extra_toml.push_str(&kannel::node_toml(&ports, SECRET));
    Some(ports)
}

/// Starts Kannel in front of NTT and files the first report by SMS: the phone sends `LAPOR …`
/// to 1708 and gets the tracking code back by SMS. Returns Kannel (keep it: later notices go
/// through it) and the code.
///
/// # Errors
///
/// Kannel did not start, or no answer came within 30 s.
pub async fn first_report(
    cluster: &Cluster,
    ports: Ports,
    dir: &std::path::Path,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(Kannel, String)> {
    let ntt = cluster.node(NTT).context("no NTT node")?;
    let port: u16 = ntt.api.rsplit(':').next().unwrap_or_default().parse()?;
    let mut k = Kannel::start(
        &dir.join("kannel"),
        ports,
        port,
        SECRET,
        Duration::from_secs(24 * 3600),
    )?;
    say(&format!(
        "== 0. Kannel (bearerbox, smsbox, fakesmsc) on loopback; sendsms {}; files in {}",
        ports.sendsms_url(),
        dir.join("kannel").display()
    ));
    let text = "LAPOR KTP-el saya masih tercatat di Jakarta padahal sudah pindah ke Kupang #kependudukan @5371";
    k.send(PHONE, text)?;
    say(&format!("   phone {PHONE} → 1708: \"{text}\""));
    let got = tokio::task::spawn_blocking({
        let delivered = k.delivered_handle();
        move || {
            kannel::wait_in(&delivered, Duration::from_secs(30), |d| {
                d.text.contains("Kode: ")
            })
        }
    })
    .await?
    .context("no tracking code came back by SMS within 30 s")?;
    say(&format!("   1708 → phone {}: \"{}\"", got.to, got.text));
    let at = got.text.find("Kode: ").map_or(0, |i| i + 6);
    let code: String = got.text.chars().skip(at).take(12).collect();
    // NTT's verifier forwards it to Jakarta's civil registry; the phone hears of each step.
    let t = ntt.state.tickets.clone();
    let phone = crate::sms::number::normalise(PHONE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let found = t.find_by_phone(&crate::domain::TrackingCode::parse(&code)?, &phone)?;
    let ticket = crate::domain::TicketId::parse(&found.ticket.id)?;
    let verifier = crate::domain::Actor {
        role: crate::domain::Role::Verifier,
        officer: Some("verifikator.ntt".into()),
        agency: None,
    };
    let now = crate::domain::Timestamp::now;
    t.act(&ticket, &verifier, crate::tickets::Action::Verify, now())?;
    let agency = crate::domain::AgencyCode::parse(super::scenario::AGENCY)?;
    t.act(
        &ticket,
        &verifier,
        crate::tickets::Action::Dispatch { agency },
        now(),
    )?;
    let delivered = k.delivered_handle();
    let forwarded = tokio::task::spawn_blocking(move || {
        kannel::wait_in(&delivered, Duration::from_secs(30), |d| {
            d.text.contains("untuk ditindaklanjuti")
        })
    })
    .await?
    .context("no forwarding notice came by SMS within 30 s")?;
    say(&format!(
        "   verified and forwarded to {}; 1708 → phone: \"{}\"",
        super::scenario::AGENCY,
        forwarded.text
    ));
    Ok((k, code))
}
