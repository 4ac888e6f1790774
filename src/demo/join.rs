//! A province joins a running federation by roster: the hub operator's roster key, the
//! roster entries of running nodes, and signing — shared by `lapor-node demo` and the tests.

use crate::crypto::keys::{NodeKey, public_key_text};
use crate::federation::roster::{self, Roster, RosterAgency, RosterKey, RosterNode, SignedRoster};

use super::cluster::ClusterNode;

/// The hub operator's roster key (kept apart from every node's event key).
#[derive(Debug)]
pub struct RosterAuthority {
    key: NodeKey,
}

impl Default for RosterAuthority {
    fn default() -> Self {
        Self::new()
    }
}

impl RosterAuthority {
    /// A new roster key.
    #[must_use]
    pub fn new() -> Self {
        Self {
            key: NodeKey::generate(),
        }
    }

    /// The public key nodes pin.
    #[must_use]
    pub fn public(&self) -> String {
        public_key_text(&self.key.verifying_key())
    }

    /// The `[federation]` line that pins it.
    #[must_use]
    pub fn toml(&self) -> String {
        format!("roster_key = \"{}\"\n", self.public())
    }

    /// Signs `r`.
    pub fn sign(&self, r: &Roster) -> anyhow::Result<SignedRoster> {
        Ok(roster::sign(r, &self.key)?)
    }
}

/// The roster entry of a running node: its real federation listener (not an emulated line),
/// its signing keys as it publishes them, its certificate's fingerprint, and `agencies`.
pub fn entry(n: &ClusterNode, agencies: Vec<RosterAgency>) -> anyhow::Result<RosterNode> {
    let info = n.federation.node_info()?;
    let cert = std::fs::read(&n.federation.settings().cert_file)?;
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(&cert)
        .map(|d: rustls::pki_types::CertificateDer<'static>| {
            crate::tls::revocation::fingerprint(d.as_ref())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = format!("https://{}:{}", n.id, n.federation_port);
    Ok(RosterNode {
        id: n.id.clone(),
        role: n.settings.raw.node.role,
        province: n.settings.raw.node.province.clone(),
        url: url::Url::parse(&url)?,
        address: Some(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            n.federation_port,
        ))),
        certificate: Some(der),
        keys: info
            .keys
            .into_iter()
            .map(|k| RosterKey {
                id: k.id,
                public_key: k.public_key,
                valid_from_ms: k.valid_from_ms,
                valid_until_ms: k.valid_until_ms,
                retired_at_ms: None,
            })
            .collect(),
        agencies,
    })
}

/// Papua (Kemendagri code 91; 94 is Papua Tengah in this project's province list).
pub const PAPUA: &str = "prov-91.lapor.test";
/// The agency Papua brings with it.
pub const PAPUA_AGENCY: &str = "PAPUA-DINKES";

/// The demo's last step: Papua joins the running federation by roster alone (no other node
/// restarts) and a Jakarta ticket is forwarded to it. Returns the forwarded ticket.
pub async fn papua_joins(
    c: &mut super::cluster::Cluster,
    auth: &RosterAuthority,
    opts: &super::cluster::Options,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<String> {
    use std::time::Duration;

    use anyhow::Context as _;
    use serde_json::json;

    use super::scenario::{Api, HUB, JAKARTA, wait_for};
    use crate::config::NodeRole;

    say("== Papua (prov-91) joins the running federation by roster; no other node restarts");
    let spec = super::cluster::NodeSpec::new(PAPUA, "91", NodeRole::Province);
    let papua = c.join(&spec, opts)?;
    say(&format!(
        "   {PAPUA} started with only the hub as peer: public API {}, federation https://{PAPUA}:{}",
        papua.api, papua.federation_port
    ));
    let mut nodes = Vec::new();
    for n in c.nodes() {
        let agencies = if n.id.as_str() == PAPUA {
            vec![RosterAgency {
                code: crate::domain::AgencyCode::parse(PAPUA_AGENCY)?,
                name: "Dinas Kesehatan Provinsi Papua".into(),
                level: crate::domain::reference::AgencyLevel::Province,
                region: crate::domain::RegionCode::parse("91")?,
            }]
        } else {
            Vec::new()
        };
        nodes.push(entry(n, agencies)?);
    }
    let version = c
        .nodes()
        .map(|n| n.federation.members().version())
        .max()
        .unwrap_or(0)
        + 1;
    let roster = Roster {
        version,
        issued_at_ms: crate::domain::Timestamp::now().millis(),
        nodes,
        revoked: Vec::new(),
    };
    let signed = auth.sign(&roster)?;
    let hub = c.node(HUB).context("no hub")?.federation.member().clone();
    tokio::task::spawn_blocking(move || hub.offer_roster(&signed, "operator"))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    say(&format!(
        "   the hub operator signed roster version {version} (4 nodes, {PAPUA_AGENCY} owned by {PAPUA}) and applied it at the hub"
    ));
    let t = wait_for(
        "every node to hold the roster",
        Duration::from_secs(60),
        || {
            Ok(c.nodes()
                .all(|n| n.federation.members().version() == version))
        },
    )
    .await?;
    say(&format!(
        "   every node holds it {} ms later (fetched from the hub)",
        t.as_millis()
    ));
    let (jkt, pap) = (
        Api::of(c.node(JAKARTA).context("no Jakarta")?),
        Api::of(c.node(PAPUA).context("no Papua")?),
    );
    let (code, _, ticket) = jkt
        .file(&json!({
            "kind": "pengaduan",
            "title": "Obat program TB tidak tersedia untuk pasien rujukan dari Jakarta",
            "body": "Pasien rujukan dari Jakarta tidak mendapat obat TB di Jayapura; mohon ditindaklanjuti Dinas Kesehatan Provinsi Papua.",
            "category": "kesehatan",
            "region": "3171",
            "agency": PAPUA_AGENCY,
            "channel": "web",
            "reporter": {"name": "Rina Siregar", "phone": "+6281311112222"}
        }))
        .await?;
    let verifier = jkt
        .officer(
            "verifikator.papua-demo",
            crate::domain::Role::Verifier,
            None,
        )
        .await?;
    jkt.act(&verifier, &ticket, &json!({"action": "verify"}))
        .await?;
    jkt.act(
        &verifier,
        &ticket,
        &json!({"action": "dispatch", "agency": PAPUA_AGENCY}),
    )
    .await?;
    let t = wait_for("the ticket to reach Papua", Duration::from_secs(60), || {
        Ok(pap.status(&ticket)?.as_deref() == Some("dispatched"))
    })
    .await?;
    say(&format!(
        "   Jakarta report {code} dispatched to {PAPUA_AGENCY}: held at {PAPUA} as dispatched {} ms later",
        t.as_millis()
    ));
    Ok(ticket)
}
