//! The demo's catch-up over an emulated satellite link: NTT's lines take a VSAT shape when
//! they return, NTT's operator asks for delivery at once (as `lapor-node sync` does), and the
//! demo draws the hub's progress and ends with the ratio of the catch-up time to the
//! information bound — the zstd-19 size of the events that piled up, divided by the link's rate.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::cluster::Cluster;
use super::linksim::Shape;
use super::scenario::{HUB, JAKARTA, NTT};
use crate::domain::{NodeId, Timestamp};

/// A VSAT line as remote regions have: 256 kbit/s each way, 600 ms round trip.
#[must_use]
pub fn vsat() -> Shape {
    Shape::new(256_000, Duration::from_millis(300))
}

/// What the catch-up measured.
#[derive(Debug, Clone, Copy)]
pub struct CatchUp {
    /// Reconnection until every outbox was empty.
    pub took: Duration,
    /// The information bound for the hub's line.
    pub bound: Duration,
    /// Events NTT wrote while cut off.
    pub events: usize,
}

/// The zstd-19 size of the events NTT wrote since `since_ms`, one JSON object per line, and
/// their number.
fn information(cluster: &Cluster, since_ms: i64) -> anyhow::Result<(usize, usize)> {
    let ntt = cluster.node(NTT).context("no NTT")?;
    let mut conn = ntt.federation.db().read()?;
    let mut all = Vec::new();
    let mut count = 0;
    let mut after: Option<(String, String)> = None;
    loop {
        let page = crate::event_log::store::page(
            &mut conn,
            after.as_ref().map(|(t, i)| (t.as_str(), i.as_str())),
            1000,
        )?;
        let Some(last) = page.last() else { break };
        after = Some((last.ticket.clone(), last.id.clone()));
        for r in page {
            if r.origin == NTT && r.stored_at_ms >= since_ms {
                all.extend_from_slice(r.raw.as_bytes());
                all.push(b'\n');
                count += 1;
            }
        }
    }
    Ok((zstd::bulk::compress(&all, 19)?.len(), count))
}

/// Gives NTT's lines `shape`, reconnects them, nudges NTT's workers and draws the hub's
/// progress with `say` until every outbox is empty (at most `limit`).
pub async fn run(
    cluster: &Cluster,
    say: &mut dyn FnMut(&str),
    shape: Shape,
    since_ms: i64,
    limit: Duration,
) -> anyhow::Result<CatchUp> {
    let (bytes, events) = information(cluster, since_ms)?;
    let rate = shape.rate_bps.map_or(u64::MAX, std::num::NonZeroU64::get);
    #[expect(clippy::cast_precision_loss, reason = "sizes for display")]
    let bound = Duration::from_secs_f64(bytes as f64 * 8.0 / rate as f64);
    for peer in [HUB, JAKARTA] {
        if let Some(line) = cluster.line(NTT, peer) {
            line.set_shape(shape);
        }
    }
    say(&format!(
        "   NTT's lines return as a VSAT link ({} kbit/s each way, {} ms round trip); NTT's \
         operator runs `lapor-node sync --peer {HUB}` (without it the node finds the link \
         within 5 s)",
        rate / 1000,
        shape.delay.as_millis() * 2
    ));
    cluster.reconnect(NTT);
    let fed = cluster.node(NTT).context("no NTT")?.federation.clone();
    for peer in [HUB, JAKARTA] {
        crate::federation::peers::retry_now(fed.db(), &NodeId::parse(peer)?)?;
    }
    fed.wake_all();
    let start = Instant::now();
    let mut total = 0;
    let mut shown = Instant::now();
    loop {
        let status = fed.status(Timestamp::now())?;
        let Some(hub) = status.iter().find(|s| s.node == HUB) else {
            anyhow::bail!("NTT has no state for the hub");
        };
        total = total.max(hub.outbox_depth);
        let done = total - hub.outbox_depth;
        let waiting = cluster.undelivered()?;
        if shown.elapsed() >= Duration::from_secs(2) || waiting == 0 {
            say(&format!(
                "   {:>5.1} s  NTT → hub {}",
                start.elapsed().as_secs_f64(),
                crate::ops::sync::bar(done, total, hub)
            ));
            shown = Instant::now();
        }
        if waiting == 0 {
            break;
        }
        if start.elapsed() > limit {
            anyhow::bail!("timed out after {limit:?} waiting for NTT to catch up");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = start.elapsed();
    say(&format!(
        "   caught up in {:.1} s; the information bound for the hub's line is {:.1} s (the \
         zstd-19 size of NTT's {events} new events, {bytes} B, ÷ the link rate): {:.2}×",
        took.as_secs_f64(),
        bound.as_secs_f64(),
        took.as_secs_f64() / bound.as_secs_f64().max(1e-9)
    ));
    Ok(CatchUp {
        took,
        bound,
        events,
    })
}
