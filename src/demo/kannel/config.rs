//! The generated Kannel configuration and its ports (shown in `docs/SMS.md`).

use std::net::TcpListener;
use std::path::Path;

/// The ports a Kannel uses on loopback.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// bearerbox admin.
    pub admin: u16,
    /// bearerbox ↔ smsbox.
    pub smsbox: u16,
    /// The fake SMSC (fakesmsc connects here).
    pub smsc: u16,
    /// smsbox's `sendsms`.
    pub sendsms: u16,
}

impl Ports {
    /// Four free loopback ports.
    ///
    /// # Errors
    ///
    /// No port could be bound.
    pub fn free() -> anyhow::Result<Self> {
        let mut ports = Vec::new();
        let mut held = Vec::new();
        for _ in 0..4 {
            let l = TcpListener::bind("127.0.0.1:0")?;
            ports.push(l.local_addr()?.port());
            held.push(l);
        }
        drop(held);
        Ok(Self {
            admin: ports[0],
            smsbox: ports[1],
            smsc: ports[2],
            sendsms: ports[3],
        })
    }

    /// The `sendsms` URL for the node's `[sms]`.
    #[must_use]
    pub fn sendsms_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.sendsms)
    }
}

/// The `sendsms-user` the generated configuration defines.
pub const SENDSMS_USER: (&str, &str) = ("lapor", "kannel-sendsms-secret");

/// The `[sms]` section of a node using this Kannel, with `secret` as the shared secret.
#[must_use]
pub fn node_toml(ports: &Ports, secret: &str) -> String {
    format!(
        "[sms]\nshared_secret = {secret:?}\nsendsms_url = {:?}\nsendsms_username = {:?}\n\
         sendsms_password = {:?}\nretry_base_secs = 1\nretry_cap_secs = 2\n",
        ports.sendsms_url(),
        SENDSMS_USER.0,
        SENDSMS_USER.1,
    )
}

/// The Kannel configuration: one fake SMSC, one smsbox, a sendsms user and the sms-service
/// calling the node at `node_port` with `secret`.
#[must_use]
pub fn config(dir: &Path, ports: &Ports, node_port: u16, secret: &str) -> String {
    let d = dir.display();
    format!(
        r#"group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = kannel-admin
smsbox-port = {smsbox}
box-allow-ip = "127.0.0.1"
log-file = "{d}/bearerbox.log"
log-level = 1
store-type = file
store-location = "{d}/kannel.store"
sms-combine-concatenated-mo = true

group = smsc
smsc = fake
smsc-id = fake
port = {smsc}
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{d}/smsbox.log"
log-level = 1
mo-recode = true
http-request-retry = 5
http-queue-delay = 1

group = sendsms-user
username = {user}
password = {password}
max-messages = 3
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "http://127.0.0.1:{node_port}/sms/kannel?secret={secret}&from=%p&to=%P&text=%b&time=%T&id=%I&smsc=%i&coding=%c&charset=%C"
"#,
        admin = ports.admin,
        smsbox = ports.smsbox,
        smsc = ports.smsc,
        sendsms = ports.sendsms,
        user = SENDSMS_USER.0,
        password = SENDSMS_USER.1,
    )
}
