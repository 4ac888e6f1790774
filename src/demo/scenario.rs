//! The demo's scripted scenario, over the nodes' real HTTP APIs and the real mTLS federation:
//!
//! 1. a citizen in Nusa Tenggara Timur (prov-53) reports a problem with a Jakarta agency;
//! 2. NTT's verifier verifies it and dispatches it to the agency, owned by prov-31: the
//!    ticket is forwarded;
//! 3. Jakarta's liaison officer starts and responds; the citizen sees the response at NTT and
//!    replies; the reply reaches Jakarta; the hub holds every step;
//! 4. NTT's links are cut; NTT keeps working alone while events pile up in its outbox;
//! 5. the links return (in `lapor-node demo` as a VSAT link: [`super::catchup`]); the
//!    background workers deliver everything; every node derives the same state for every
//!    ticket.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::cluster::{Cluster, ClusterNode, state_hash};
use crate::domain::{AgencyCode, Role, Timestamp};

/// The nodes of the demo.
pub const HUB: &str = "hub.lapor.test";
/// DKI Jakarta.
pub const JAKARTA: &str = "prov-31.lapor.test";
/// Nusa Tenggara Timur.
pub const NTT: &str = "prov-53.lapor.test";
/// The Jakarta agency the NTT citizen's report concerns.
pub const AGENCY: &str = "DKI-DUKCAPIL";

/// The hub's national statistics the demo prints, answered for anyone (small counts shown as
/// "<5").
pub const HUB_PUBLIC: [&str; 3] = [
    "/api/v1/hub/stats?group_by=province,status",
    "/api/v1/hub/sla?group_by=province",
    "/api/v1/hub/export?format=csv&group_by=province,kind",
];

/// The hub's figures the demo prints for an analyst or admin: flows between provinces, the
/// backlog by age and the federation's health.
pub const HUB_ANALYST: [&str; 3] = [
    "/api/v1/hub/flows?group_by=origin,handler",
    "/api/v1/hub/backlog?group_by=province",
    "/api/v1/hub/federation",
];

/// A node's public API, as a client sees it.
#[derive(Debug, Clone)]
pub struct Api {
    /// Base URL.
    pub base: String,
    http: reqwest::Client,
    state: crate::api::ApiState,
}

impl Api {
    /// The API of `node`.
    #[must_use]
    pub fn of(node: &ClusterNode) -> Self {
        Self {
            base: node.api.clone(),
            http: reqwest::Client::new(),
            state: node.state.clone(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// `POST path` with JSON, an optional bearer token and an optional follow-up token.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        follow_up: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(f) = follow_up {
            req = req.header("X-Follow-Up-Token", f);
        }
        self.send(req).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// Creates an officer account and logs in; returns the bearer token.
    pub async fn officer(
        &self,
        name: &str,
        role: Role,
        agency: Option<&str>,
    ) -> anyhow::Result<String> {
        let agency = agency.map(AgencyCode::parse).transpose()?;
        let auth = self.state.auth.clone();
        let n = name.to_owned();
        tokio::task::spawn_blocking(move || {
            auth.add(&n, "demo password 2026", role, agency, Timestamp::now())
        })
        .await??;
        let (st, v) = self
            .post(
                "/api/v1/auth/login",
                None,
                None,
                &json!({"username": name, "password": "demo password 2026"}),
            )
            .await?;
        if st != 200 {
            bail!("login of {name} failed: {st} {v}");
        }
        v["token"].as_str().map(str::to_owned).context("no token")
    }

    /// Files a report; returns (tracking code, follow-up token, ticket id).
    pub async fn file(&self, body: &Value) -> anyhow::Result<(String, String, String)> {
        let (st, v) = self.post("/api/v1/reports", None, None, body).await?;
        if st != 201 {
            bail!("filing failed: {st} {v}");
        }
        let code = v["tracking_code"]
            .as_str()
            .context("no tracking code")?
            .to_owned();
        let token = v["follow_up_token"]
            .as_str()
            .context("no token")?
            .to_owned();
        let id = self.ticket_id(&code)?.context("filed ticket not found")?;
        Ok((code, token, id))
    }

    /// A ticket's id by tracking code, if this node holds it.
    pub fn ticket_id(&self, code: &str) -> anyhow::Result<Option<String>> {
        let mut c = self.state.tickets.db().read()?;
        let code = crate::domain::TrackingCode::parse(code)?;
        Ok(
            crate::tickets::store::by_tracking_code(&mut c, self.state.tickets.codes(), &code)?
                .map(|r| r.id),
        )
    }

    /// A ticket's status on this node, if held.
    pub fn status(&self, ticket: &str) -> anyhow::Result<Option<String>> {
        let mut c = self.state.tickets.db().read()?;
        let id = crate::domain::TicketId::parse(ticket)?;
        Ok(crate::tickets::store::by_id(&mut c, &id)?.map(|r| r.status))
    }

    /// Takes an officer action; fails unless it is accepted.
    pub async fn act(&self, token: &str, ticket: &str, action: &Value) -> anyhow::Result<Value> {
        let (st, v) = self
            .post(
                &format!("/api/v1/tickets/{ticket}/actions"),
                Some(token),
                None,
                action,
            )
            .await?;
        if st != 200 {
            bail!("action {action} on {ticket} failed: {st} {v}");
        }
        Ok(v)
    }
}

/// The NTT citizen's report.
#[must_use]
pub fn ntt_report(n: usize) -> Value {
    json!({
        "kind": "pengaduan",
        "title": format!("KTP-el belum dipindahkan ({n})"),
        "body": "Saya pindah dari Jakarta ke Kupang tiga bulan lalu; data KTP-el saya masih tercatat di Jakarta sehingga saya tidak bisa mengurus BPJS di Kupang.",
        "category": "kependudukan",
        "region": "5371",
        "agency": AGENCY,
        "channel": "sms",
        "reporter": {"name": "Maria Bria", "phone": "+6281234567890"}
    })
}

/// Waits until `check` holds, polling, or fails after `timeout`.
pub async fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The forwarded ticket.
    pub ticket: String,
    /// Events written by NTT while cut off.
    pub piled_up: i64,
    /// Time from reconnection until every outbox was empty.
    pub catch_up: Duration,
    /// Tickets compared across nodes.
    pub compared: usize,
}

/// Runs the scenario on a cluster with background workers, printing each step with `say`.
pub async fn run(
    cluster: &Cluster,
    say: &mut dyn FnMut(&str),
    backlog: usize,
    satellite: Option<super::linksim::Shape>,
) -> anyhow::Result<Summary> {
    let node = |id: &str| cluster.node(id).with_context(|| format!("no node {id}"));
    let (ntt, jkt, hub) = (
        Api::of(node(NTT)?),
        Api::of(node(JAKARTA)?),
        Api::of(node(HUB)?),
    );
    let limit = Duration::from_secs(60);
    say(
        "== 1. A citizen in Kupang (NTT, prov-53) reports by SMS a problem with Jakarta's civil registry",
    );
    let (code, follow_up, ticket) = ntt.file(&ntt_report(0)).await?;
    say(&format!(
        "   filed at {NTT}: tracking code {code}, ticket {ticket}"
    ));
    say(&format!(
        "   citizen view: GET {}/api/v1/reports/{code}",
        ntt.base
    ));

    say(
        "== 2. NTT's verifier verifies it and dispatches it to DKI-DUKCAPIL (owned by prov-31): forwarded",
    );
    let verifier = ntt.officer("verifikator.ntt", Role::Verifier, None).await?;
    ntt.act(&verifier, &ticket, &json!({"action": "verify"}))
        .await?;
    let v = ntt
        .act(
            &verifier,
            &ticket,
            &json!({"action": "dispatch", "agency": AGENCY}),
        )
        .await?;
    say(&format!(
        "   handler is now {}",
        v["handling_node"].as_str().unwrap_or("?")
    ));
    let t = wait_for("the ticket to reach Jakarta", limit, || {
        Ok(jkt.status(&ticket)?.as_deref() == Some("dispatched"))
    })
    .await?;
    say(&format!(
        "   Jakarta received it over mTLS after {} ms; it is in Jakarta's inbox",
        t.as_millis()
    ));

    say("== 3. Jakarta's liaison officer starts work and responds");
    let liaison = jkt
        .officer("penghubung.dukcapil", Role::Liaison, Some(AGENCY))
        .await?;
    jkt.act(&liaison, &ticket, &json!({"action": "start"}))
        .await?;
    jkt.act(&liaison, &ticket, &json!({"action": "respond", "message": "Data Anda sudah kami pindahkan; silakan cetak ulang KTP-el di Dukcapil Kota Kupang."})).await?;
    wait_for("the response to reach NTT", limit, || {
        Ok(ntt.status(&ticket)?.as_deref() == Some("responded"))
    })
    .await?;
    let (_, view) = ntt.get(&format!("/api/v1/reports/{code}"), None).await?;
    let response = view["timeline"]
        .as_array()
        .and_then(|t| t.iter().rev().find(|e| e["kind"] == "responded"))
        .and_then(|e| e["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    say(&format!(
        "   the citizen sees at NTT: status {}, response \"{response}\"",
        view["status"]
    ));

    say("== 4. The citizen replies at NTT; the reply reaches Jakarta");
    let (st, v) = ntt
        .post(&format!("/api/v1/reports/{code}/replies"), None, Some(&follow_up), &json!({"message": "Terima kasih, tetapi Dukcapil Kupang meminta surat pindah. Mohon dibantu."}))
        .await?;
    if st != 200 {
        bail!("reply failed: {st} {v}");
    }
    wait_for("the reply to reach Jakarta", limit, || {
        Ok(jkt.status(&ticket)?.as_deref() == Some("in_progress"))
    })
    .await?;
    say("   Jakarta sees the reply: the ticket is back in progress with a new response deadline");
    jkt.act(&liaison, &ticket, &json!({"action": "resolve", "message": "Surat pindah sudah kami kirim ke Dukcapil Kota Kupang."})).await?;
    wait_for("the hub and NTT to see the resolution", limit, || {
        Ok(ntt.status(&ticket)?.as_deref() == Some("resolved")
            && hub.status(&ticket)?.as_deref() == Some("resolved"))
    })
    .await?;
    say("   resolved; the hub holds every step (its copy: status resolved)");

    say(&format!(
        "== 5. NTT's links are cut; NTT keeps working alone ({backlog} more reports, dispatched to Jakarta)"
    ));
    let cut_at = Timestamp::now().millis();
    cluster.isolate(NTT);
    for n in 1..=backlog {
        let (_, _, id) = ntt.file(&ntt_report(n)).await?;
        ntt.act(&verifier, &id, &json!({"action": "verify"}))
            .await?;
        ntt.act(
            &verifier,
            &id,
            &json!({"action": "dispatch", "agency": AGENCY}),
        )
        .await?;
    }
    let ntt_fed = node(NTT)?.federation.clone();
    // Let the workers try (and fail) a few times, so the operator view shows the outage.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let piled: i64 = ntt_fed
        .status(Timestamp::now())?
        .iter()
        .map(|p| p.outbox_depth)
        .sum();
    for p in ntt_fed.status(Timestamp::now())? {
        say(&format!(
            "   NTT → {}: {} event(s) waiting, reachable: {}",
            p.node, p.outbox_depth, p.reachable
        ));
    }

    say("== 6. The links return; the workers deliver the backlog");
    let catch_up = if let Some(shape) = satellite {
        super::catchup::run(cluster, say, shape, cut_at, Duration::from_secs(600))
            .await?
            .took
    } else {
        cluster.reconnect(NTT);
        ntt_fed.wake_all();
        wait_for("every outbox to drain", Duration::from_secs(120), || {
            Ok(cluster.undelivered()? == 0)
        })
        .await?
    };
    say(&format!(
        "   every outbox empty {} ms after reconnection",
        catch_up.as_millis()
    ));

    let mut compared = 0;
    let mut c = node(NTT)?.federation.db().read()?;
    let ids: Vec<String> = crate::tickets::store::all(&mut c)?
        .into_iter()
        .map(|r| r.id)
        .collect();
    drop(c);
    for id in &ids {
        let hashes: Vec<Option<String>> = [NTT, JAKARTA, HUB]
            .iter()
            .map(|n| node(n).and_then(|n| Ok(state_hash(n, id)?)))
            .collect::<anyhow::Result<_>>()?;
        if hashes.iter().any(|h| h != &hashes[0] || h.is_none()) {
            bail!("ticket {id}: nodes disagree: {hashes:?}");
        }
        compared += 1;
    }
    say(&format!(
        "== 7. All three nodes derive the same state for all {compared} ticket(s)"
    ));
    Ok(Summary {
        ticket,
        piled_up: piled,
        catch_up,
        compared,
    })
}
