//! What `lapor-node demo` tells a person who wants to click through it: each node's web
//! console and the officer accounts it holds (the scenario's own, and an admin and a verifier
//! more per node), all with the demo password.

use super::cluster::Cluster;
use super::scenario::{AGENCY, HUB, JAKARTA, NTT};
use crate::domain::{AgencyCode, Role, Timestamp};

/// The demo accounts' password.
pub const PASSWORD: &str = "demo password 2026";

/// The accounts the scenario creates itself: (node, username, role, agency).
const SCENARIO: [(&str, &str, Role, Option<&str>); 2] = [
    (NTT, "verifikator.ntt", Role::Verifier, None),
    (JAKARTA, "penghubung.dukcapil", Role::Liaison, Some(AGENCY)),
];

/// The accounts added for the console.
const EXTRA: [(&str, &str, Role, Option<&str>); 5] = [
    (NTT, "admin.ntt", Role::Admin, None),
    (JAKARTA, "verifikator.dki", Role::Verifier, None),
    (JAKARTA, "admin.dki", Role::Admin, None),
    (HUB, "verifikator.hub", Role::Verifier, None),
    (HUB, "admin.hub", Role::Admin, None),
];

/// Adds the console accounts (after the scenario ran) and returns the lines to print.
///
/// # Errors
///
/// An account could not be created.
pub async fn accounts(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for n in cluster.nodes() {
        lines.push(format!(
            "  {:<22} web console {}/ (citizens)  {}/petugas (officers)",
            n.id.as_str(),
            n.api,
            n.api
        ));
        for (node, name, role, agency) in SCENARIO.iter().chain(EXTRA.iter()) {
            if *node != n.id.as_str() {
                continue;
            }
            if EXTRA.iter().any(|e| e.1 == *name) {
                let auth = n.state.auth.clone();
                let (name, role) = ((*name).to_owned(), *role);
                let agency = agency.map(AgencyCode::parse).transpose()?;
                tokio::task::spawn_blocking(move || {
                    auth.add(&name, PASSWORD, role, agency, Timestamp::now())
                })
                .await??;
            }
            lines.push(format!(
                "      {name:<20} {}{}",
                role.as_str(),
                agency.map(|a| format!(" of {a}")).unwrap_or_default()
            ));
        }
    }
    lines.push(format!("  every account's password: \"{PASSWORD}\""));
    Ok(lines)
}
