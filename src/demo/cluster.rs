//! A whole federation in one process, on loopback: a dev CA, a certificate per node, one
//! SQLite (or PostgreSQL) database per node, and a cuttable [`Link`] for every direction
//! between two nodes. The two links between a pair of nodes ride one emulated [`Line`] (shaped
//! by [`Options::link`]), so a node's requests and its peer's answers share the line's
//! bandwidth in each direction. `lapor-node demo`, the federation tests and the benchmarks run
//! on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::link::Link;
use super::linksim::{Line, Shape, Side, Traffic};
use crate::api::ApiState;
use crate::app::{App, Stop};
use crate::config::{NodeRole, Settings};
use crate::domain::NodeId;
use crate::federation::{Delivered, FedError, Federation, Pulled};
use crate::tls::certs::{self, Validity};

/// One node to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Node id.
    pub id: String,
    /// Province code.
    pub province: String,
    /// Role.
    pub role: NodeRole,
    /// Database URL (default: SQLite in the node's directory).
    pub database_url: Option<String>,
}

impl NodeSpec {
    /// A node on SQLite.
    #[must_use]
    pub fn new(id: &str, province: &str, role: NodeRole) -> Self {
        Self {
            id: id.to_owned(),
            province: province.to_owned(),
            role,
            database_url: None,
        }
    }
}

/// How the cluster runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run delivery and catch-up in the background (`false`: the caller drives them).
    pub workers: bool,
    /// Catch-up period with workers on.
    pub pull_interval_secs: u64,
    /// Extra TOML appended to every node's configuration.
    pub extra_toml: String,
    /// Extra keys of every node's `[federation]` table (e.g. `batch_max_events = 5`).
    pub federation_toml: String,
    /// The shape of every line between two nodes (default: no limit, no delay).
    pub link: Shape,
    /// Short retry delays and request timeout (backoff 200 ms to 3 s, requests 20 s), as tests
    /// want; `false`: the node's own defaults.
    pub fast_retries: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: false,
            pull_interval_secs: 2,
            extra_toml: String::new(),
            federation_toml: String::new(),
            link: Shape::default(),
            fast_retries: true,
        }
    }
}

/// A running node of the cluster.
#[derive(Debug)]
pub struct ClusterNode {
    /// Node id.
    pub id: NodeId,
    /// Its settings.
    pub settings: Settings,
    /// Public API base URL (`http://127.0.0.1:PORT`).
    pub api: String,
    /// Federation listener port.
    pub federation_port: u16,
    /// Handler state (officer accounts, commands).
    pub state: ApiState,
    /// Federation side.
    pub federation: Federation,
    stop: Option<tokio::sync::oneshot::Sender<Stop>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The federation.
#[derive(Debug)]
pub struct Cluster {
    /// Working directory (CA, certificates, databases).
    pub dir: PathBuf,
    nodes: BTreeMap<String, ClusterNode>,
    links: BTreeMap<(String, String), Link>,
    /// One line per pair of nodes, keyed by the pair in order (the first is side A).
    lines: BTreeMap<(String, String), Line>,
}

/// The key of the line between `a` and `b`, and the side `a` sits at.
fn line_key(a: &str, b: &str) -> ((String, String), Side) {
    if a <= b {
        ((a.to_owned(), b.to_owned()), Side::A)
    } else {
        ((b.to_owned(), a.to_owned()), Side::B)
    }
}

fn node_toml(
    spec: &NodeSpec,
    dir: &Path,
    peers: &[(NodeSpec, std::net::SocketAddr)],
    opts: &Options,
) -> String {
    let tls = dir.join(&spec.id).join("tls");
    let role = |r: NodeRole| match r {
        NodeRole::Hub => "hub",
        NodeRole::Province => "province",
    };
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let mut t = format!(
        "[node]\nid = \"{id}\"\nrole = \"{role}\"\nprovince = \"{prov}\"\ndata_dir = {data}\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\nintake_per_minute = 0\n\n",
        id = spec.id,
        role = role(spec.role),
        prov = spec.province,
        data = q(&dir.join(&spec.id)),
    );
    if let Some(url) = &spec.database_url {
        t.push_str(&format!(
            "[database]\nurl = {}\npool_size = 4\n\n",
            toml::Value::String(url.clone())
        ));
    }
    t.push_str(&format!(
        "[federation]\nlisten = \"127.0.0.1:0\"\nca_file = {}\ncert_file = {}\nkey_file = {}\n\
         workers = {}\npull_interval_secs = {}\n",
        q(&tls.join(certs::CA_CERT)),
        q(&tls.join(certs::NODE_CERT)),
        q(&tls.join(certs::NODE_KEY)),
        opts.workers,
        opts.pull_interval_secs,
    ));
    if opts.fast_retries {
        t.push_str("backoff_base_ms = 200\nbackoff_cap_ms = 3000\nrequest_timeout_secs = 20\n");
    }
    if !opts.federation_toml.is_empty() {
        t.push_str(&opts.federation_toml);
        t.push('\n');
    }
    for (p, addr) in peers {
        t.push_str(&format!(
            "\n[[federation.peers]]\nid = \"{id}\"\nurl = \"https://{id}:{port}\"\nrole = \"{role}\"\n\
             province = \"{prov}\"\naddress = \"{addr}\"\n",
            id = p.id,
            port = addr.port(),
            role = role(p.role),
            prov = p.province,
        ));
    }
    t.push('\n');
    t.push_str(&opts.extra_toml);
    t
}

impl Cluster {
    /// Creates a CA and certificates in `dir` and starts every node.
    pub async fn start(dir: &Path, specs: &[NodeSpec], opts: &Options) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        let ca_dir = dir.join("ca");
        certs::create_ca(&ca_dir, "LAPOR! development federation CA", 30)?;
        let mut links = BTreeMap::new();
        let mut lines = BTreeMap::new();
        for a in specs {
            let id = NodeId::parse(&a.id)?;
            certs::issue(
                &ca_dir,
                &id,
                &dir.join(&a.id).join("tls"),
                Validity::days(30),
            )?;
            for b in specs.iter().filter(|b| b.id != a.id) {
                let (key, side) = line_key(&a.id, &b.id);
                let line = lines
                    .entry(key)
                    .or_insert_with(|| Line::new(opts.link))
                    .clone();
                links.insert(
                    (a.id.clone(), b.id.clone()),
                    Link::start_on(&line, side).await?,
                );
            }
        }
        let mut nodes = BTreeMap::new();
        for a in specs {
            let peers: Vec<(NodeSpec, std::net::SocketAddr)> = specs
                .iter()
                .filter(|b| b.id != a.id)
                .filter_map(|b| {
                    links
                        .get(&(a.id.clone(), b.id.clone()))
                        .map(|l: &Link| (b.clone(), l.addr()))
                })
                .collect();
            let text = node_toml(a, dir, &peers, opts);
            std::fs::write(dir.join(format!("{}.toml", a.id)), &text)?;
            let settings =
                Settings::from_toml(&text).with_context(|| format!("configuration of {}", a.id))?;
            nodes.insert(a.id.clone(), Self::launch(settings)?);
        }
        let cluster = Self {
            dir: dir.to_owned(),
            nodes,
            links,
            lines,
        };
        cluster.connect_links().await;
        for n in cluster.nodes.values() {
            let failed = n.federation.fetch_all_keys().await;
            if !failed.is_empty() {
                anyhow::bail!("{}: cannot pin peer keys: {failed:?}", n.id);
            }
        }
        Ok(cluster)
    }

    fn launch(settings: Settings) -> anyhow::Result<ClusterNode> {
        let app = App::build(&settings)?;
        let federation = app
            .federation()
            .cloned()
            .context("cluster nodes are federated")?;
        let federation_port = app.federation_port().unwrap_or(0);
        let api = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<Stop>();
        let task = tokio::spawn(app.run_until(async move { rx.await.unwrap_or(Stop::Graceful) }));
        Ok(ClusterNode {
            id: settings.node_id().clone(),
            settings,
            api,
            federation_port,
            state,
            federation,
            stop: Some(tx),
            task: Some(task),
        })
    }

    async fn connect_links(&self) {
        for ((_, to), link) in &self.links {
            if let Some(n) = self.nodes.get(to) {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], n.federation_port));
                link.set_target(addr).await;
            }
        }
    }

    /// Starts a new node `spec` beside the running ones, as a province joining by roster: its
    /// certificate from the cluster's CA, and for peers only the hub (direct, no emulated
    /// line) — the rest it learns from the roster. No other node is touched.
    pub fn join(&mut self, spec: &NodeSpec, opts: &Options) -> anyhow::Result<&ClusterNode> {
        let id = NodeId::parse(&spec.id)?;
        certs::issue(
            &self.dir.join("ca"),
            &id,
            &self.dir.join(&spec.id).join("tls"),
            Validity::days(30),
        )?;
        let hub = self
            .nodes
            .values()
            .find(|n| n.settings.raw.node.role == NodeRole::Hub)
            .context("the cluster has no hub")?;
        let hub_spec = NodeSpec::new(
            hub.id.as_str(),
            hub.settings.raw.node.province.as_str(),
            NodeRole::Hub,
        );
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], hub.federation_port));
        let text = node_toml(spec, &self.dir, &[(hub_spec, addr)], opts);
        std::fs::write(self.dir.join(format!("{}.toml", spec.id)), &text)?;
        let settings =
            Settings::from_toml(&text).with_context(|| format!("configuration of {}", spec.id))?;
        let node = Self::launch(settings)?;
        self.nodes.insert(spec.id.clone(), node);
        self.nodes.get(&spec.id).context("just inserted")
    }

    /// A node by id.
    ///
    /// # Panics
    /// Never for ids given to [`Cluster::start`]; other ids are a programming error.
    #[must_use]
    pub fn node(&self, id: &str) -> Option<&ClusterNode> {
        self.nodes.get(id)
    }

    /// Every node.
    pub fn nodes(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.values()
    }

    /// The link carrying `from`'s requests to `to`.
    #[must_use]
    pub fn link(&self, from: &str, to: &str) -> Option<&Link> {
        self.links.get(&(from.to_owned(), to.to_owned()))
    }

    /// The line between `a` and `b` (either order): reshape, cut or flap it.
    #[must_use]
    pub fn line(&self, a: &str, b: &str) -> Option<&Line> {
        self.lines.get(&line_key(a, b).0)
    }

    /// What the line between them has carried from `from` towards `to` so far.
    #[must_use]
    pub fn traffic(&self, from: &str, to: &str) -> Option<Traffic> {
        let (key, side) = line_key(from, to);
        self.lines.get(&key).map(|l| l.counters().from(side))
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&self, id: &str) {
        for ((a, b), l) in &self.links {
            if a == id || b == id {
                l.cut();
            }
        }
    }

    /// Restores every link to and from `id`.
    pub fn reconnect(&self, id: &str) {
        for ((a, b), l) in &self.links {
            if a == id || b == id {
                l.restore();
            }
        }
    }

    /// Stops a node (its listeners close; its database stays).
    pub async fn stop(&mut self, id: &str) -> anyhow::Result<()> {
        self.halt(id, Stop::Graceful).await
    }

    /// Stops a node at once, as a crash would: connections drop mid-request (its database
    /// keeps what was committed).
    pub async fn kill(&mut self, id: &str) -> anyhow::Result<()> {
        self.halt(id, Stop::Immediate).await
    }

    async fn halt(&mut self, id: &str, how: Stop) -> anyhow::Result<()> {
        let n = self.nodes.get_mut(id).context("no such node")?;
        if let Some(tx) = n.stop.take() {
            let _ = tx.send(how);
        }
        if let Some(mut t) = n.task.take() {
            // The node bounds its own graceful stop; this bounds the wait for it all the same,
            // so that a stuck node fails a test instead of hanging it.
            match tokio::time::timeout(std::time::Duration::from_secs(60), &mut t).await {
                Ok(r) => r??,
                Err(_) => {
                    t.abort();
                    anyhow::bail!("node {id} did not stop within 60 s");
                }
            }
        }
        Ok(())
    }

    /// Starts a stopped node again on its database (new ports; the links follow).
    pub async fn restart(&mut self, id: &str) -> anyhow::Result<()> {
        let settings = self.nodes.get(id).context("no such node")?.settings.clone();
        let node = tokio::task::spawn_blocking(move || Self::launch(settings)).await??;
        self.nodes.insert(id.to_owned(), node);
        self.connect_links().await;
        Ok(())
    }

    /// Starts a stopped node again after `between` ran on its settings with the node's
    /// database closed (its handles dropped first): a test replaces the database with a backup
    /// there, as an operator restoring a node would.
    pub async fn restart_with(
        &mut self,
        id: &str,
        between: impl FnOnce(&Settings) -> anyhow::Result<()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let old = self.nodes.remove(id).context("no such node")?;
        let settings = old.settings.clone();
        let closed = old.state.tickets.db().closed_probe();
        drop(old);
        let node = tokio::task::spawn_blocking(move || {
            // Nothing may touch the files while a handle is open: SQLite's last close
            // checkpoints its log into the database file.
            if !closed.wait(std::time::Duration::from_secs(30)) {
                anyhow::bail!(
                    "node {}'s database is still open 30 s after it stopped",
                    settings.raw.node.id
                );
            }
            between(&settings)?;
            Self::launch(settings)
        })
        .await??;
        self.nodes.insert(id.to_owned(), node);
        self.connect_links().await;
        Ok(())
    }

    /// One delivery round from every node to every peer; transport errors are ignored (the
    /// rows stay queued). Returns the total.
    pub async fn deliver_round(&self) -> Delivered {
        let mut total = Delivered::default();
        for n in self.nodes.values() {
            for p in &n.federation.peers() {
                if let Ok(r) = n.federation.drain(&p.id).await {
                    total.sent += r.sent;
                    total.acknowledged += r.acknowledged;
                    total.deferred += r.deferred;
                    total.refused += r.refused;
                }
            }
        }
        total
    }

    /// One catch-up round on every node.
    pub async fn pull_round(&self) -> Result<Pulled, FedError> {
        let mut total = Pulled::default();
        for n in self.nodes.values() {
            let p = n.federation.pull_once().await?;
            total.received += p.received;
            total.accepted += p.accepted;
            total.rejected += p.rejected;
            total.deferred += p.deferred;
        }
        Ok(total)
    }

    /// Delivers and pulls until nothing moves any more (at most `rounds` rounds).
    pub async fn settle(&self, rounds: usize) -> Result<(), FedError> {
        for _ in 0..rounds {
            let d = self.deliver_round().await;
            let p = self.pull_round().await?;
            if d.acknowledged == 0 && p.accepted == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Events still waiting in outboxes, over all nodes (refused rows not counted).
    pub fn undelivered(&self) -> Result<i64, FedError> {
        let mut total = 0;
        for n in self.nodes.values() {
            for s in n.federation.status(crate::domain::Timestamp::now())? {
                total += s.outbox_depth;
            }
        }
        Ok(total)
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        let ids: Vec<String> = self.nodes.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.stop(&id).await {
                tracing::warn!(node = %id, error = %e, "node did not stop cleanly");
            }
        }
    }
}

/// A hash of a ticket's folded state as `node` holds it (compare nodes with it).
pub fn state_hash(node: &ClusterNode, ticket: &str) -> Result<Option<String>, FedError> {
    use sha2::Digest;
    let mut conn = node.federation.db().read()?;
    let Ok(id) = crate::domain::TicketId::parse(ticket) else {
        return Ok(None);
    };
    let row = crate::tickets::store::by_id(&mut conn, &id)?;
    Ok(row.map(|r| crate::crypto::to_hex(&sha2::Sha256::digest(r.state.as_bytes()))))
}
