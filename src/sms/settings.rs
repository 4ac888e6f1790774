//! `[sms]`: the Kannel gateway this node talks to (absent: no SMS channel). Keys and defaults
//! are listed in the `config` module's doc and in `docs/SMS.md`.

use std::net::IpAddr;

use secrecy::SecretString;
use serde::Deserialize;

/// The SMS channel's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    /// The secret Kannel's `get-url`/`post-url` carries as `secret=` (at least 16 characters).
    pub shared_secret: SecretString,
    /// The gateway addresses (smsbox hosts) allowed to call the inbound endpoint.
    #[serde(default = "loopback")]
    pub allowed_gateways: Vec<IpAddr>,
    /// Kannel's `sendsms` URL, e.g. `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub sendsms_url: url::Url,
    /// The `sendsms-user` name.
    pub sendsms_username: String,
    /// Its password.
    pub sendsms_password: SecretString,
    /// The sender (short number) of outbound messages (`from=`), e.g. `1708`.
    #[serde(default = "short_number")]
    pub sender: String,
    /// The SMSC to route outbound messages through (`smsc=`), when Kannel has several.
    #[serde(default)]
    pub smsc_id: Option<String>,
    /// Longest inbound message taken, in characters (after the gateway joined its parts).
    #[serde(default = "max_chars")]
    pub max_chars: usize,
    /// Inbound messages one number may send per hour; more are refused (429) unanswered.
    #[serde(default = "per_number_per_hour")]
    pub per_number_per_hour: u32,
    /// Inbound messages the node takes per minute from all numbers together.
    #[serde(default = "global_per_minute")]
    pub global_per_minute: u32,
    /// Outbound messages to one number per day (node's time zone); more wait for the next day.
    #[serde(default = "daily_cap")]
    pub daily_cap_per_number: u32,
    /// First retry delay after a failed `sendsms`, doubled per failure up to `retry_cap_secs`.
    #[serde(default = "retry_base_secs")]
    pub retry_base_secs: u64,
    /// Longest retry delay.
    #[serde(default = "retry_cap_secs")]
    pub retry_cap_secs: u64,
    /// Failed attempts after which a message is dead-lettered (shown to admins, retried only
    /// on request).
    #[serde(default = "max_attempts")]
    pub max_attempts: u32,
    /// Run the sender in the background (`false`: tests drive it).
    #[serde(default = "yes")]
    pub worker: bool,
}

fn loopback() -> Vec<IpAddr> {
    vec![IpAddr::from([127, 0, 0, 1])]
}
fn short_number() -> String {
    "1708".into()
}
const fn max_chars() -> usize {
    1000
}
const fn per_number_per_hour() -> u32 {
    30
}
const fn global_per_minute() -> u32 {
    600
}
const fn daily_cap() -> u32 {
    20
}
const fn retry_base_secs() -> u64 {
    5
}
const fn retry_cap_secs() -> u64 {
    900
}
const fn max_attempts() -> u32 {
    12
}
const fn yes() -> bool {
    true
}

impl SmsSettings {
    /// Cross-field checks: `(field, problem)` of the first fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        use secrecy::ExposeSecret;
        if self.shared_secret.expose_secret().chars().count() < 16 {
            return Err(("sms.shared_secret", "must be at least 16 characters".into()));
        }
        if self.allowed_gateways.is_empty() {
            return Err((
                "sms.allowed_gateways",
                "must name at least one gateway address".into(),
            ));
        }
        if !matches!(self.sendsms_url.scheme(), "http" | "https") {
            return Err((
                "sms.sendsms_url",
                "must be an http:// or https:// URL".into(),
            ));
        }
        if self.max_chars == 0 || self.max_chars > 8000 {
            return Err(("sms.max_chars", "must be between 1 and 8000".into()));
        }
        if self.per_number_per_hour == 0 || self.global_per_minute == 0 {
            return Err((
                "sms.per_number_per_hour",
                "rate limits must be at least 1".into(),
            ));
        }
        if self.retry_base_secs == 0 || self.retry_cap_secs < self.retry_base_secs {
            return Err((
                "sms.retry_cap_secs",
                "retry_base_secs must be at least 1 and retry_cap_secs at least that".into(),
            ));
        }
        if self.max_attempts == 0 {
            return Err(("sms.max_attempts", "must be at least 1".into()));
        }
        Ok(())
    }
}
