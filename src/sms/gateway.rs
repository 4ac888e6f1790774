//! Kannel's `sendsms` interface: one HTTP GET per message part (`username`, `password`,
//! `from`, `to`, `text`, `coding=0`, `charset=UTF-8`, and `udh` — the concatenation header — for
//! a part of a longer message). Kannel answers 202 (`0: Accepted for delivery`, or `3: Queued
//! for later delivery` while its SMSC is down: it keeps the message in its store); anything else,
//! or no answer, is a failure the sender retries.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::settings::SmsSettings;

/// A failed `sendsms` call (its text holds the gateway's answer, never the number or text).
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// No answer (connection refused, timeout).
    #[error("gateway unreachable: {0}")]
    Unreachable(String),
    /// Kannel refused the message.
    #[error("gateway answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Kannel's first line.
        body: String,
    },
}

/// One part of a concatenated message: `(reference, total, sequence)`.
pub type Part = (u8, u8, u8);

/// The `sendsms` client.
#[derive(Debug, Clone)]
pub struct Gateway {
    client: reqwest::Client,
    settings: SmsSettings,
}

impl Gateway {
    /// A client for `settings.sendsms_url`.
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built.
    pub fn new(settings: &SmsSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            client,
            settings: settings.clone(),
        })
    }

    /// Sends `text` (GSM-7) to `to`, as `part` of a concatenated message when given.
    ///
    /// # Errors
    ///
    /// See [`GatewayError`].
    pub async fn send(&self, to: &str, text: &str, part: Option<Part>) -> Result<(), GatewayError> {
        let s = &self.settings;
        let mut query: Vec<(&str, String)> = vec![
            ("username", s.sendsms_username.clone()),
            ("password", s.sendsms_password.expose_secret().to_owned()),
            ("from", s.sender.clone()),
            ("to", to.to_owned()),
            ("text", text.to_owned()),
            ("coding", "0".into()),
            ("charset", "UTF-8".into()),
        ];
        if let Some(smsc) = &s.smsc_id {
            query.push(("smsc", smsc.clone()));
        }
        let mut url = s.sendsms_url.clone();
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &query {
                q.append_pair(k, v);
            }
        }
        if let Some((reference, total, seq)) = part {
            // The UDH is binary: percent-encoded byte by byte, as Kannel reads it.
            let udh = [5u8, 0, 3, reference, total, seq]
                .iter()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>();
            let with = format!("{}&udh={udh}", url.as_str());
            url = url::Url::parse(&with).map_err(|e| GatewayError::Unreachable(e.to_string()))?;
        }
        let answer = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| GatewayError::Unreachable(e.without_url().to_string()))?;
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(GatewayError::Refused {
                status: status.as_u16(),
                body: body
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
            })
        }
    }
}
