//! `lapor-node linksim`: the link emulator as a standalone TCP proxy, to put a slow or
//! flapping link in front of any node (`--listen` → `--to`), printing what it carried every
//! `--report-secs` and on Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use super::link::Link;
use super::linksim::{Counters, Line, Shape, Side};

/// `linksim` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LinksimArgs {
    /// Address to listen on (clients connect here), e.g. 127.0.0.1:9443.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where connections lead, e.g. 127.0.0.1:8443 or hub.example:8443.
    #[arg(long)]
    pub to: String,
    /// Bandwidth in each direction, kbit/s (0: unlimited).
    #[arg(long)]
    pub rate_kbit: u64,
    /// One-way delay, ms (the round trip is twice this).
    #[arg(long)]
    pub delay_ms: u64,
    /// Extra delay up to this many ms per packet (a connection's bytes stay in order).
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Bytes (KiB) waiting to be sent, per direction, before senders are held back.
    #[arg(long, default_value_t = 64)]
    pub queue_kb: usize,
    /// Flap: up this many seconds, then down `--flap-down-secs`, over and over.
    #[arg(long, requires = "flap_down_secs")]
    pub flap_up_secs: Option<u64>,
    /// Flap: down this many seconds (open connections closed, new ones refused).
    #[arg(long, requires = "flap_up_secs")]
    pub flap_down_secs: Option<u64>,
    /// Print the counters every this many seconds (0: only at the end).
    #[arg(long, default_value_t = 10)]
    pub report_secs: u64,
}

impl LinksimArgs {
    /// The shape these arguments give each direction.
    #[must_use]
    pub fn shape(&self) -> Shape {
        Shape::new(
            self.rate_kbit.saturating_mul(1000),
            Duration::from_millis(self.delay_ms),
        )
        .with_jitter(Duration::from_millis(self.jitter_ms))
        .with_queue(self.queue_kb.saturating_mul(1024))
    }
}

/// Runs the proxy until Ctrl-C, saying what it carried.
pub fn run(args: &LinksimArgs, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let target = tokio::net::lookup_host(&args.to)
            .await
            .with_context(|| format!("cannot resolve {}", args.to))?
            .next()
            .with_context(|| format!("{} has no address", args.to))?;
        let shape = args.shape();
        let line = Line::new(shape);
        let link = Link::bind(args.listen, &line, Side::A)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        link.set_target(target).await;
        let mut plan = String::new();
        if let (Some(up), Some(down)) = (args.flap_up_secs, args.flap_down_secs) {
            line.flap(Duration::from_secs(up), Duration::from_secs(down));
            plan = format!(", flapping {up} s up / {down} s down");
        }
        say(&format!(
            "linksim: {} → {target}: {} each way, {} ms one way (jitter ≤ {} ms), queue {} KiB{plan}; Ctrl-C stops",
            link.addr(),
            rate(args.rate_kbit),
            args.delay_ms,
            args.jitter_ms,
            args.queue_kb,
        ));
        let start = tokio::time::Instant::now();
        let period = Duration::from_secs(args.report_secs.max(1));
        let mut last = (start, Counters::default());
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                () = tokio::time::sleep(period), if args.report_secs > 0 => {
                    let now = (tokio::time::Instant::now(), line.counters());
                    say(&report(&line, now.0 - start, now.1, now.1 - last.1, now.0 - last.0));
                    last = now;
                }
            }
        }
        let end = tokio::time::Instant::now() - start;
        let c = line.counters();
        say(&format!("total after {:.0} s:", end.as_secs_f64()));
        say(&report(&line, end, c, c, end));
        anyhow::Ok(())
    })
}

fn rate(kbit: u64) -> String {
    if kbit == 0 {
        "unlimited".to_owned()
    } else {
        format!("{kbit} kbit/s")
    }
}

/// One line: the totals, and the rate delivered over the last `span` (`delta`).
fn report(line: &Line, at: Duration, total: Counters, delta: Counters, span: Duration) -> String {
    let kbit = |bytes: u64| {
        let secs = span.as_secs_f64().max(1e-3);
        #[expect(
            clippy::cast_precision_loss,
            reason = "a rate for display; byte counts stay far below 2^52"
        )]
        let b = bytes as f64;
        b * 8.0 / secs / 1000.0
    };
    format!(
        "[{:>6.0} s] {}  →  sent {} B, delivered {} B ({:.1} kbit/s)  ←  sent {} B, delivered {} B ({:.1} kbit/s)  connections {} (refused {}, cut {})",
        at.as_secs_f64(),
        if line.is_up() { "up  " } else { "DOWN" },
        total.a_to_b.sent,
        total.a_to_b.delivered,
        kbit(delta.a_to_b.delivered),
        total.b_to_a.sent,
        total.b_to_a.delivered,
        kbit(delta.b_to_a.delivered),
        total.connections,
        total.refused,
        total.cut,
    )
}
