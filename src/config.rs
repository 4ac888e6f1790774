//! Configuration, in layers: built-in defaults → a TOML file (`--config FILE`) → environment
//! variables `LAPOR__SECTION__KEY` (e.g. `LAPOR__DATABASE__URL`, `LAPOR__HTTP__LISTEN`).
//! Unknown keys are refused, and every fault names its field. Secrets (the database URL, which
//! may carry a password) are wrapped so they never print.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `node.id` | required | the node's DNS name, e.g. `prov-31.lapor.test` |
//! | `node.role` | `province` | `province` or `hub` |
//! | `node.province` | required | Kemendagri province code, e.g. `31` |
//! | `node.time_zone` | from the province list | UTC offset such as `+07:00` |
//! | `node.data_dir` | `./data` | where the SQLite database and keys live |
//! | `node.key_file` | `<data_dir>/keys/signing.pem` | Ed25519 signing key, mode 0600, created on first start |
//! | `http.listen` | `127.0.0.1:8080` | public API listener |
//! | `http.max_body_bytes` | `65536` | request body limit |
//! | `http.workers` | `0` (one per CPU core but one, at least 1) | public API worker threads |
//! | `database.url` | `<data_dir>/lapor.sqlite` | `sqlite://PATH` or `postgres://…` |
//! | `database.statistics_url` | unset (the primary) | PostgreSQL: a streaming replica that serves the national statistics reads (`/api/v1/hub/*` but `federation`, `/nasional`) |
//! | `database.pool_size` | `8` | connections in the pool |
//! | `database.connect_timeout_secs` | `5` | PostgreSQL: give up opening a connection after this (libpq `connect_timeout`, at least 2) |
//! | `database.statement_timeout_ms` | `30000` | PostgreSQL: the server cancels a statement running longer (`statement_timeout`; 0 = none) |
//! | `database.pool_timeout_ms` | `2000` | wait at most this for a pooled connection, then answer 503 |
//! | `database.start_timeout_secs` | `60` | at start, retry opening the database this long (logged) before giving up |
//! | `calendar.holidays` | `[]` | national holidays and *cuti bersama*, `YYYY-MM-DD` |
//! | `sla.verify_dispatch_working_days` | `3` | verification + dispatch limit |
//! | `sla.response_working_days` | `5` | agency response limit after dispatch |
//! | `sla.auto_close_working_days` | `10` | auto-close after a response with no reply |
//! | `sla.reopen_window_working_days` | `10` | how long a citizen may reopen |
//! | `sla.overall_calendar_days` | `60` | completion cap |
//! | `sla.sweep_interval_secs` | `60` | how often breaches and auto-close are checked |
//! | `limits.title_max_chars` | `200` | report title limit |
//! | `limits.text_max_chars` | `8000` | report/response/reply text limit |
//! | `reference.provinces_file` | built-in copy of `config/provinces.csv` | province list |
//! | `reference.agencies_file` | built-in copy of `config/agencies.csv` | agency list |
//! | `http.intake_per_minute` | `30` | public intake requests per client address per minute |
//! | `http.lookups_per_minute` | `120` | tracking-code lookups and follow-ups per client address per minute |
//! | `http.follow_up_failures_per_minute` | `10` | refused follow-up tokens per client address per minute |
//! | `http.login_per_minute` | `20` | officer login attempts per client address per minute |
//! | `http.trusted_proxies` | `[]` | reverse proxies (IPs or CIDRs) whose client-address header is believed |
//! | `http.client_address_header` | `x-forwarded-for` | that header: `x-forwarded-for` or `forwarded` (RFC 7239) |
//! | `auth.token_ttl_minutes` | `480` | officer bearer token lifetime |
//! | `auth.lockout_after_failures` | `5` | consecutive failed logins that lock a username (0 = never) |
//! | `auth.lockout_secs` / `lockout_max_secs` | `60` / `3600` | first lock, doubled per further failure up to the cap |
//! | `auth.hash_concurrency` | `0` (CPU cores but one, at least 1) | password hashes run at once |
//! | `auth.hash_queue` | `32` | logins waiting for a hash slot before further ones get 429 |
//! | `log.format` | `text` | `text` or `json` |
//! | `log.filter` | `info` | tracing filter (`RUST_LOG` syntax); `RUST_LOG` wins if set |
//! | `federation.listen` | (no federation) | mTLS listener for peers |
//! | `federation.ca_file`, `cert_file`, `key_file` | required with `listen` | federation CA, node certificate and key |
//! | `federation.peers` | `[]` | `{id, url, role, province, address?}` per peer |
//! | `federation.batch_max_events` / `batch_max_bytes` | `500` / 1 MiB | delivery batch caps |
//! | `federation.max_request_bytes` / `max_decompressed_bytes` | 4 MiB / 16 MiB | inbox limits |
//! | `federation.in_flight` | `4` | batches in flight per destination |
//! | `federation.backoff_base_ms` / `backoff_cap_ms` | `1000` / `900000` | retry delays (jittered) |
//! | `federation.pull_interval_secs` | `60` | catch-up period |
//! | `federation.request_timeout_secs` | `60` | one federation request, plus the time its bytes take at `min_link_kbit` |
//! | `federation.min_link_kbit` | `8` | the slowest link a request's timeout allows for (kbit/s) |
//! | `federation.link_timeout_secs` | `120` | the listener's keep-alive, TLS handshake and request-head timeouts (a full queue on a slow link delays them) |
//! | `federation.workers` | `true` | run delivery and catch-up in the background (and, on a province, the status sender; on the hub, the alert job) |
//! | `federation.roster_key` | (none) | the hub's roster public key (base64): rosters it signs set the membership |
//! | `federation.status_interval_secs` | `60` | a province's signed status to the hub (also soon after its head or quarantine changes); the hub's alert job |
//! | `federation.alert_silent_secs` | `1800` | the hub alerts on a member not heard from for longer |
//! | `federation.alert_skew_secs` | `120` | the hub alerts on a member whose clock is off by more |
//! | `sms` | (no SMS channel) | Kannel gateway (`docs/SMS.md`); with it, `shared_secret` (≥ 16 characters), `sendsms_url`, `sendsms_username`, `sendsms_password` are required |
//! | `sms.allowed_gateways` | `["127.0.0.1"]` | addresses allowed to call `/sms/kannel` |
//! | `sms.sender` / `sms.smsc_id` | `1708` / none | `from=` and `smsc=` of outbound messages |
//! | `sms.max_chars` | `1000` | longest inbound message (after its parts are joined) |
//! | `sms.per_number_per_hour` / `sms.global_per_minute` | `30` / `600` | inbound rate limits (429 beyond) |
//! | `sms.daily_cap_per_number` | `20` | outbound messages per number per day (the rest wait) |
//! | `sms.retry_base_secs` / `retry_cap_secs` / `max_attempts` | `5` / `900` / `12` | `sendsms` retries, then dead letter |
//! | `sms.worker` | `true` | run the SMS sender in the background |
//! | `statistics.small_cell_k` | `5` | public and open-data statistics show counts from 1 to k−1 as `<k` (at least 2) |
//! | `hub.escalate_breaches` | `10` | the hub raises an `sla_breaches` alert on a node that recorded at least this many SLA breaches (1–1000000) … |
//! | `hub.escalate_window_days` | `7` | … within this many days (1–366) |

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::{Date, UtcOffset};

use crate::domain::reference::{Agency, Provinces, parse_agencies, parse_offset};
use crate::domain::sla::WorkCalendar;
use crate::domain::{NodeId, ProvinceCode};

/// The built-in province list.
pub const BUILTIN_PROVINCES: &str = include_str!("../config/provinces.csv");
/// The built-in (example) agency list.
pub const BUILTIN_AGENCIES: &str = include_str!("../config/agencies.csv");

/// A configuration fault, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers could not be read or did not match the schema.
    #[error("configuration: {0}")]
    Load(String),
    /// A value is well-formed but not acceptable.
    #[error("configuration: {field}: {message}")]
    Invalid {
        /// Dotted key.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// What a node is in the federation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// A province node.
    Province,
    /// The national hub.
    Hub,
}

/// `[node]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// DNS name.
    pub id: NodeId,
    /// Role.
    #[serde(default = "default_role")]
    pub role: NodeRole,
    /// Province code.
    pub province: ProvinceCode,
    /// UTC offset override.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Data directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The node's Ed25519 signing key (PKCS#8 PEM, mode 0600); created on first start.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_role() -> NodeRole {
    NodeRole::Province
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Public API listener.
    pub listen: SocketAddr,
    /// Request body limit in bytes.
    pub max_body_bytes: usize,
    /// Public intake requests allowed per client address per minute (0 = unlimited).
    pub intake_per_minute: u32,
    /// Public API worker threads; 0 chooses [`HttpSettings::worker_count`]'s default.
    pub workers: usize,
    /// Tracking-code lookups and follow-up requests per client address per minute (0 = unlimited).
    pub lookups_per_minute: u32,
    /// Refused follow-up tokens per client address per minute (0 = unlimited).
    pub follow_up_failures_per_minute: u32,
    /// Officer login attempts per client address per minute (0 = unlimited).
    pub login_per_minute: u32,
    /// Reverse proxies whose client-address header is believed (empty: the TCP peer is the client).
    pub trusted_proxies: Vec<IpCidr>,
    /// The header the trusted proxies set.
    pub client_address_header: ClientAddressHeader,
}

/// The header a trusted reverse proxy names the client in. Only the configured one is read: a
/// proxy that appends to one header passes the other through as the client sent it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`); a bare
/// address is a network of one. IPv4-mapped IPv6 addresses match as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpCidr {
    addr: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// Parses `ADDR` or `ADDR/PREFIX`; host bits must be zero.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (a, p) = text
            .split_once('/')
            .map_or((text, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: prefix must be 0-{max}"))?,
        };
        let net = Self { addr, prefix };
        if net.network_bits(addr) != bits(addr) {
            return Err(format!("{text:?}: host bits are set below /{prefix}"));
        }
        Ok(net)
    }

    /// Whether `ip` is in this network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && self.network_bits(ip) == bits(self.addr)
    }

    fn network_bits(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let host = width - u32::from(self.prefix);
        bits(ip) & u128::MAX.checked_shl(host).unwrap_or(0)
    }
}

impl TryFrom<String> for IpCidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl std::fmt::Display for IpCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as IPv4; any other address as it is.
#[must_use]
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl HttpSettings {
    /// The worker threads to run: `workers`, or when 0 one per CPU core but one (at least
    /// one). The database writer is a thread of its own that is busy under load: a worker per
    /// core would have the writer and the workers take turns on every core.
    #[must_use]
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .saturating_sub(1)
            .max(1)
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024,
            intake_per_minute: 30,
            workers: 0,
            lookups_per_minute: 120,
            follow_up_failures_per_minute: 10,
            login_per_minute: 20,
            trusted_proxies: Vec::new(),
            client_address_header: ClientAddressHeader::XForwardedFor,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Connection URL (secret: may hold a password).
    pub url: Option<SecretString>,
    /// PostgreSQL: a read-only replica for the statistics reads (secret: may hold a password).
    pub statistics_url: Option<SecretString>,
    /// Pool size.
    pub pool_size: u32,
    /// PostgreSQL: seconds to open a connection before giving up (libpq `connect_timeout`).
    pub connect_timeout_secs: u64,
    /// PostgreSQL: the server cancels a statement running longer (`statement_timeout`, ms; 0
    /// turns it off).
    pub statement_timeout_ms: u64,
    /// Longest wait for a pooled connection before a request is answered 503, in ms.
    pub pool_timeout_ms: u64,
    /// At start, how long to keep retrying a database that cannot be opened, in seconds.
    pub start_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            statistics_url: None,
            pool_size: 8,
            connect_timeout_secs: 5,
            statement_timeout_ms: 30_000,
            pool_timeout_ms: 2_000,
            start_timeout_secs: 60,
        }
    }
}

impl DatabaseSettings {
    /// The connection options these settings give.
    #[must_use]
    pub fn options(&self) -> crate::db::DbOptions {
        crate::db::DbOptions {
            pool_size: self.pool_size,
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout_secs),
            statement_timeout: std::time::Duration::from_millis(self.statement_timeout_ms),
            pool_timeout: std::time::Duration::from_millis(self.pool_timeout_ms),
        }
    }
}

/// `[calendar]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarSettings {
    /// Non-working dates besides weekends.
    pub holidays: Vec<Date>,
}

/// `[sla]`: all limits of the SLA clocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaSettings {
    /// Verification + dispatch, working days after submission.
    pub verify_dispatch_working_days: u32,
    /// Agency response, working days after dispatch.
    pub response_working_days: u32,
    /// Auto-close, working days after a response or resolution without reply.
    pub auto_close_working_days: u32,
    /// Reopen window, working days after resolution.
    pub reopen_window_working_days: u32,
    /// Completion cap, calendar days after submission.
    pub overall_calendar_days: u32,
    /// Sweep period of the SLA job.
    pub sweep_interval_secs: u64,
}

impl Default for SlaSettings {
    fn default() -> Self {
        Self {
            verify_dispatch_working_days: 3,
            response_working_days: 5,
            auto_close_working_days: 10,
            reopen_window_working_days: 10,
            overall_calendar_days: 60,
            sweep_interval_secs: 60,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Report title, in characters.
    pub title_max_chars: usize,
    /// Report, response and reply texts, in characters.
    pub text_max_chars: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            title_max_chars: 200,
            text_max_chars: 8000,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Officer bearer token lifetime, in minutes.
    pub token_ttl_minutes: u32,
    /// Consecutive failed logins after which a username is locked (0 = never).
    pub lockout_after_failures: u32,
    /// First lock period, in seconds; doubled by each further failure.
    pub lockout_secs: u64,
    /// Longest lock period, in seconds.
    pub lockout_max_secs: u64,
    /// Password hashes (argon2) computed at once; 0 = CPU cores but one, at least 1.
    pub hash_concurrency: usize,
    /// Logins that may wait for a hash slot; further ones are refused at once (429).
    pub hash_queue: usize,
}

impl AuthSettings {
    /// The hash slots to run: `hash_concurrency`, or when 0 one per CPU core but one (at least
    /// one), so a login flood leaves a core to the other routes.
    #[must_use]
    pub fn hash_slots(&self) -> usize {
        if self.hash_concurrency > 0 {
            return self.hash_concurrency;
        }
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .saturating_sub(1)
            .max(1)
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            token_ttl_minutes: 480,
            lockout_after_failures: 5,
            lockout_secs: 60,
            lockout_max_secs: 3600,
            hash_concurrency: 0,
            hash_queue: 32,
        }
    }
}

/// `[reference]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceSettings {
    /// Province list file.
    pub provinces_file: Option<PathBuf>,
    /// Agency list file.
    pub agencies_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// Filter directives.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// `[statistics]`: the national statistics API (`hub::query`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatisticsSettings {
    /// Counts from 1 to one below this are shown as `<k` to the public and in the open-data
    /// export (at least 2).
    pub small_cell_k: u32,
}

impl Default for StatisticsSettings {
    fn default() -> Self {
        Self { small_cell_k: 5 }
    }
}

/// `[hub]`: what the hub escalates (`hub::escalation`; read on the hub only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSettings {
    /// A node that recorded at least this many SLA breaches within the window gets an
    /// `sla_breaches` alert (1–1,000,000).
    pub escalate_breaches: u32,
    /// The window, in days back from now (1–366).
    pub escalate_window_days: u32,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            escalate_breaches: 10,
            escalate_window_days: 7,
        }
    }
}

impl HubSettings {
    fn check(&self) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.escalate_breaches) {
            return Err(invalid(
                "hub.escalate_breaches",
                format!(
                    "must be between 1 and 1000000 (got {})",
                    self.escalate_breaches
                ),
            ));
        }
        if !(1..=366).contains(&self.escalate_window_days) {
            return Err(invalid(
                "hub.escalate_window_days",
                format!(
                    "must be between 1 and 366 days (got {})",
                    self.escalate_window_days
                ),
            ));
        }
        Ok(())
    }
}

/// `[[federation.peers]]`: a node this node exchanges events with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    /// The peer's node id (the DNS SAN of its certificate).
    pub id: NodeId,
    /// Its federation listener, `https://<node id>:<port>`.
    pub url: url::Url,
    /// Province node or hub.
    pub role: NodeRole,
    /// Its province code.
    pub province: ProvinceCode,
    /// Connect here instead of resolving the URL's host (the certificate is still checked
    /// against the node id): hosts without DNS, tunnels, test proxies.
    #[serde(default)]
    pub address: Option<SocketAddr>,
}

/// `[federation]`: the mTLS listener, this node's certificate, its peers and delivery limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSettings {
    /// Federation listener (mTLS), separate from the public API.
    pub listen: SocketAddr,
    /// Federation CA certificate.
    pub ca_file: PathBuf,
    /// This node's certificate (DNS SAN = node id).
    pub cert_file: PathBuf,
    /// This node's certificate key.
    pub key_file: PathBuf,
    /// The peers.
    #[serde(default)]
    pub peers: Vec<PeerSettings>,
    /// Events per delivery batch.
    #[serde(default = "d_batch_events")]
    pub batch_max_events: usize,
    /// Uncompressed bytes per delivery batch.
    #[serde(default = "d_batch_bytes")]
    pub batch_max_bytes: usize,
    /// Largest request body accepted on the federation listener (as sent, compressed).
    #[serde(default = "d_request_bytes")]
    pub max_request_bytes: usize,
    /// Largest request body after decompression.
    #[serde(default = "d_decompressed_bytes")]
    pub max_decompressed_bytes: usize,
    /// Batches in flight per destination.
    #[serde(default = "d_in_flight")]
    pub in_flight: usize,
    /// First retry delay after a failure.
    #[serde(default = "d_backoff_base")]
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    #[serde(default = "d_backoff_cap")]
    pub backoff_cap_ms: u64,
    /// How often to pull missed events (catch-up) from origins and the hub.
    #[serde(default = "d_pull_interval")]
    pub pull_interval_secs: u64,
    /// Timeout of one federation request.
    #[serde(default = "d_request_timeout")]
    pub request_timeout_secs: u64,
    /// The slowest link a request's timeout allows for (kbit/s): a request may take
    /// `request_timeout_secs` plus its bytes at this rate.
    #[serde(default = "d_min_link_kbit")]
    pub min_link_kbit: u64,
    /// The federation listener's keep-alive, TLS handshake and request-head timeouts.
    #[serde(default = "d_link_timeout")]
    pub link_timeout_secs: u64,
    /// Run the delivery and catch-up workers (tests drive them by hand with `false`).
    #[serde(default = "d_true")]
    pub workers: bool,
    /// The public key (standard base64) of the hub operator's roster key: rosters signed by it
    /// are accepted from any member. Absent: no roster is accepted, the static peers are the
    /// membership.
    #[serde(default)]
    pub roster_key: Option<String>,
    /// A province sends the hub its signed status this often (and soon after its chain head
    /// or quarantine changes); the hub's alert job runs this often.
    #[serde(default = "d_status_interval")]
    pub status_interval_secs: u64,
    /// The hub raises a `silent` alert for a member not heard from for longer than this.
    #[serde(default = "d_alert_silent")]
    pub alert_silent_secs: u64,
    /// The hub raises a `skew` alert for a member whose clock is off by more than this.
    #[serde(default = "d_alert_skew")]
    pub alert_skew_secs: u64,
}

const fn d_status_interval() -> u64 {
    60
}
const fn d_alert_silent() -> u64 {
    30 * 60
}
const fn d_alert_skew() -> u64 {
    120
}

const fn d_batch_events() -> usize {
    500
}
const fn d_batch_bytes() -> usize {
    1024 * 1024
}
const fn d_request_bytes() -> usize {
    4 * 1024 * 1024
}
const fn d_decompressed_bytes() -> usize {
    16 * 1024 * 1024
}
const fn d_in_flight() -> usize {
    4
}
const fn d_backoff_base() -> u64 {
    1000
}
const fn d_backoff_cap() -> u64 {
    15 * 60 * 1000
}
const fn d_pull_interval() -> u64 {
    60
}
const fn d_min_link_kbit() -> u64 {
    8
}
const fn d_link_timeout() -> u64 {
    120
}
const fn d_request_timeout() -> u64 {
    60
}
const fn d_true() -> bool {
    true
}

impl FederationSettings {
    /// The hub among the peers, if any.
    #[must_use]
    pub fn hub(&self) -> Option<&PeerSettings> {
        self.peers.iter().find(|p| p.role == NodeRole::Hub)
    }

    /// A peer by id.
    #[must_use]
    pub fn peer(&self, id: &NodeId) -> Option<&PeerSettings> {
        self.peers.iter().find(|p| &p.id == id)
    }

    fn check(&self, me: &NodeSettings) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for p in &self.peers {
            if p.id == me.id {
                return Err(invalid(
                    "federation.peers",
                    format!("{} is this node itself", p.id),
                ));
            }
            if !seen.insert(p.id.as_str()) {
                return Err(invalid(
                    "federation.peers",
                    format!("{} is listed twice", p.id),
                ));
            }
            if p.url.scheme() != "https" || p.url.host_str() != Some(p.id.as_str()) {
                return Err(invalid(
                    "federation.peers",
                    format!(
                        "{}: url must be https://{}:<port> (the certificate names the node)",
                        p.id, p.id
                    ),
                ));
            }
        }
        let hubs = self
            .peers
            .iter()
            .filter(|p| p.role == NodeRole::Hub)
            .count()
            + usize::from(me.role == NodeRole::Hub);
        if hubs > 1 {
            return Err(invalid("federation.peers", "more than one hub"));
        }
        if self.batch_max_events == 0 || self.in_flight == 0 {
            return Err(invalid(
                "federation.batch_max_events",
                "batch size and in_flight must be at least 1",
            ));
        }
        if self.batch_max_bytes > self.max_decompressed_bytes {
            return Err(invalid(
                "federation.batch_max_bytes",
                "must not exceed max_decompressed_bytes",
            ));
        }
        if self.backoff_base_ms == 0 || self.backoff_cap_ms < self.backoff_base_ms {
            return Err(invalid(
                "federation.backoff_cap_ms",
                "backoff_base_ms must be at least 1 and backoff_cap_ms at least backoff_base_ms",
            ));
        }
        if self.min_link_kbit == 0 || self.link_timeout_secs == 0 {
            return Err(invalid(
                "federation.min_link_kbit",
                "min_link_kbit and link_timeout_secs must be at least 1",
            ));
        }
        if let Some(k) = &self.roster_key {
            crate::crypto::keys::parse_public_key(k).map_err(|e| {
                invalid(
                    "federation.roster_key",
                    format!("not an Ed25519 public key in base64: {e}"),
                )
            })?;
        }
        if self.pull_interval_secs == 0 || self.request_timeout_secs == 0 {
            return Err(invalid(
                "federation.pull_interval_secs",
                "intervals must be at least 1 second",
            ));
        }
        Ok(())
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// `[node]`.
    pub node: NodeSettings,
    /// `[http]`.
    #[serde(default)]
    pub http: HttpSettings,
    /// `[database]`.
    #[serde(default)]
    pub database: DatabaseSettings,
    /// `[calendar]`.
    #[serde(default)]
    pub calendar: CalendarSettings,
    /// `[sla]`.
    #[serde(default)]
    pub sla: SlaSettings,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitSettings,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthSettings,
    /// `[reference]`.
    #[serde(default)]
    pub reference: ReferenceSettings,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSettings,
    /// `[federation]` (absent: the node runs alone).
    #[serde(default)]
    pub federation: Option<FederationSettings>,
    /// `[sms]` (absent: no SMS channel).
    #[serde(default)]
    pub sms: Option<crate::sms::settings::SmsSettings>,
    /// `[statistics]`.
    #[serde(default)]
    pub statistics: StatisticsSettings,
    /// `[hub]`.
    #[serde(default)]
    pub hub: HubSettings,
}

/// Where the database is.
#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (secret).
    Postgres(SecretString),
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH` or `postgres://…`/`postgresql://…`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url::Url::parse(url)
                .map_err(|e| invalid("database.url", format!("not a valid PostgreSQL URL: {e}")))?;
            return Ok(Self::Postgres(SecretString::from(url)));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(Self::Sqlite(PathBuf::from(p))),
            _ => Err(invalid(
                "database.url",
                "must start with sqlite:// (a file path) or postgres:// (a PostgreSQL URL)",
            )),
        }
    }

    /// A description safe to log (no password).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite {}", p.display()),
            Self::Postgres(s) => match url::Url::parse(s.expose_secret()) {
                Ok(u) => format!(
                    "postgres {}:{}{}",
                    u.host_str().unwrap_or("?"),
                    u.port().unwrap_or(5432),
                    u.path()
                ),
                Err(_) => "postgres".into(),
            },
        }
    }
}

/// The checked configuration a node runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The raw sections.
    pub raw: RawSettings,
    /// The database to use.
    pub database: DatabaseUrl,
    /// A replica serving the statistics reads, when configured.
    pub statistics_database: Option<DatabaseUrl>,
    /// Working-day calendar in the node's time zone.
    pub calendar: WorkCalendar,
    /// Province list.
    pub provinces: Provinces,
    /// Agency list.
    pub agencies: Vec<Agency>,
}

impl Settings {
    /// Loads the layers (file optional) and checks them.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::new();
        if let Some(f) = file {
            let problem = match std::fs::metadata(f) {
                Ok(m) if m.is_file() => None,
                Ok(_) => Some(format!("{} is not a file", f.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Some(format!("file {} does not exist", f.display()))
                }
                // Permission denied on it or a directory above: say so, not "does not exist".
                Err(e) => Some(format!("cannot read {}: {e}", f.display())),
            };
            if let Some(problem) = problem {
                return Err(invalid("--config", problem));
            }
            fig = fig.merge(Toml::file(f));
        }
        let fig = fig.merge(Env::prefixed("LAPOR__").split("__"));
        let raw: RawSettings = fig.extract().map_err(|e| {
            let source = file.map_or_else(
                || {
                    "no configuration: give --config FILE (or LAPOR_CONFIG), or set \
                    LAPOR__NODE__ID and LAPOR__NODE__PROVINCE"
                        .to_owned()
                },
                |f| format!("{} has no [node] section (id, province)", f.display()),
            );
            load_error(&e, &source)
        })?;
        Self::check(raw)
    }

    /// Checks a configuration given as TOML text (tests, `init`).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(&Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(fig: &Figment) -> Result<Self, ConfigError> {
        let raw: RawSettings = fig
            .extract()
            .map_err(|e| load_error(&e, "no [node] section (id, province)"))?;
        Self::check(raw)
    }

    /// Checks cross-field rules and reads the reference files.
    pub fn check(raw: RawSettings) -> Result<Self, ConfigError> {
        if raw.statistics.small_cell_k < 2 {
            return Err(invalid(
                "statistics.small_cell_k",
                "must be at least 2 (1 would suppress nothing)",
            ));
        }
        let provinces_text = read_or(
            &raw.reference.provinces_file,
            BUILTIN_PROVINCES,
            "reference.provinces_file",
        )?;
        let provinces = Provinces::parse(&provinces_text)
            .map_err(|e| invalid("reference.provinces_file", e.to_string()))?;
        let agencies_text = read_or(
            &raw.reference.agencies_file,
            BUILTIN_AGENCIES,
            "reference.agencies_file",
        )?;
        let agencies = parse_agencies(&agencies_text)
            .map_err(|e| invalid("reference.agencies_file", e.to_string()))?;
        if let Some(a) = agencies.iter().find(|a| !provinces.knows_region(&a.region)) {
            return Err(invalid(
                "reference.agencies_file",
                format!("agency {} names unknown region {}", a.code, a.region),
            ));
        }
        let Some(province) = provinces.get(&raw.node.province) else {
            return Err(invalid(
                "node.province",
                format!("unknown province code {}", raw.node.province),
            ));
        };
        let offset: UtcOffset = match &raw.node.time_zone {
            None => province.offset,
            Some(tz) => parse_offset(tz).ok_or_else(|| {
                invalid(
                    "node.time_zone",
                    format!("{tz:?} is not an offset like +07:00"),
                )
            })?,
        };
        let database = match &raw.database.url {
            Some(url) => DatabaseUrl::parse(url.expose_secret())?,
            None => DatabaseUrl::Sqlite(raw.node.data_dir.join("lapor.sqlite")),
        };
        let statistics_database = match &raw.database.statistics_url {
            Some(url) => Some(
                DatabaseUrl::parse(url.expose_secret())
                    .map_err(|_| invalid("database.statistics_url", "must be a postgres:// URL"))?,
            ),
            None => None,
        };
        if let Some(replica) = &statistics_database {
            if !matches!(
                (&database, replica),
                (DatabaseUrl::Postgres(_), DatabaseUrl::Postgres(_))
            ) {
                return Err(invalid(
                    "database.statistics_url",
                    "a statistics replica needs PostgreSQL for both database.url and \
                     database.statistics_url",
                ));
            }
        }
        if raw.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1"));
        }
        if !(2..=3600).contains(&raw.database.connect_timeout_secs) {
            return Err(invalid(
                "database.connect_timeout_secs",
                "must be between 2 and 3600 (libpq counts less than 2 as 2)",
            ));
        }
        if !(100..=600_000).contains(&raw.database.pool_timeout_ms) {
            return Err(invalid(
                "database.pool_timeout_ms",
                "must be between 100 and 600000",
            ));
        }
        if raw.http.workers > 256 {
            return Err(invalid(
                "http.workers",
                "must be at most 256 (0 chooses by CPU cores)",
            ));
        }
        if raw.http.max_body_bytes < 1024 {
            return Err(invalid("http.max_body_bytes", "must be at least 1024"));
        }
        if raw.auth.lockout_secs == 0 || raw.auth.lockout_max_secs < raw.auth.lockout_secs {
            return Err(invalid(
                "auth.lockout_max_secs",
                "lockout_secs must be at least 1 and lockout_max_secs at least lockout_secs",
            ));
        }
        if raw.auth.hash_concurrency > 256 {
            return Err(invalid(
                "auth.hash_concurrency",
                "must be at most 256 (0 chooses by CPU cores)",
            ));
        }
        if raw.auth.token_ttl_minutes == 0 {
            return Err(invalid("auth.token_ttl_minutes", "must be at least 1"));
        }
        raw.hub.check()?;
        if raw.sla.sweep_interval_secs == 0 {
            return Err(invalid("sla.sweep_interval_secs", "must be at least 1"));
        }
        if let Some(f) = &raw.federation {
            f.check(&raw.node)?;
        }
        if let Some((field, problem)) = raw.sms.as_ref().and_then(|s| s.check().err()) {
            return Err(invalid(field, problem));
        }
        let calendar = WorkCalendar::new(offset, raw.calendar.holidays.iter().copied());
        Ok(Self {
            raw,
            database,
            statistics_database,
            calendar,
            provinces,
            agencies,
        })
    }

    /// Where the node's signing key lives.
    #[must_use]
    pub fn key_path(&self) -> PathBuf {
        self.raw
            .node
            .key_file
            .clone()
            .unwrap_or_else(|| self.raw.node.data_dir.join("keys").join("signing.pem"))
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> &NodeId {
        &self.raw.node.id
    }
}

/// The loader's error; a missing `[node]` (no file, a file without it, or no environment)
/// says so first with `no_node`, ahead of figment's `missing field `node``.
fn load_error(e: &figment::Error, no_node: &str) -> ConfigError {
    let missing_node = e.path.is_empty()
        && matches!(&e.kind, figment::error::Kind::MissingField(f) if f == "node");
    if missing_node {
        ConfigError::Load(format!("{no_node}; {e}"))
    } else {
        ConfigError::Load(e.to_string())
    }
}

fn read_or(
    path: &Option<PathBuf>,
    builtin: &str,
    field: &'static str,
) -> Result<String, ConfigError> {
    match path {
        None => Ok(builtin.to_owned()),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| invalid(field, format!("cannot read {}: {e}", p.display()))),
    }
}
