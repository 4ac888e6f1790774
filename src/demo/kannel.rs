//! A real Kannel on loopback for tests, benchmarks and `demo`: `bearerbox`, `smsbox` and
//! `fakesmsc` (Debian `kannel`, `kannel-extras`) as child processes on free ports, with a
//! generated configuration in a temporary directory (the one `docs/SMS.md` shows). `fakesmsc`
//! plays the phones: [`Kannel::send`] types a message into it (mobile-originated), and every
//! message Kannel delivers to it (mobile-terminated) is collected ([`Kannel::delivered`]).
//!
//! ```text
//!  send(from, text) ─► fakesmsc ─► bearerbox (smsc fake) ─► smsbox ─► node /sms/kannel
//!  node sender ─► smsbox sendsms ─► bearerbox ─► fakesmsc ─► delivered()
//! ```
//!
//! Children are killed when the value is dropped (also when a test panics), and each runs
//! under `timeout` with a lifetime, so none outlives a test process that was killed outright.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Where Debian puts the binaries.
const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

/// What to install when the binaries are missing.
pub const INSTALL_HINT: &str = "Kannel is not installed: `apt-get install kannel kannel-extras` \
(or run .ci/install-kannel); set LAPOR_SKIP_KANNEL=1 to skip the Kannel tests";

/// Whether the Kannel binaries are installed.
#[must_use]
pub fn installed() -> bool {
    [BEARERBOX, SMSBOX, FAKESMSC]
        .iter()
        .all(|p| Path::new(p).exists())
}

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

/// A message Kannel delivered to a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The receiving number, as the node addressed it.
    pub to: String,
    /// The text (parts joined).
    pub text: String,
}

/// A running Kannel.
#[derive(Debug)]
pub struct Kannel {
    dir: PathBuf,
    ports: Ports,
    lifetime: Duration,
    bearerbox: Option<Child>,
    smsbox: Option<Child>,
    fakesmsc: Option<Child>,
    phones: Option<ChildStdin>,
    delivered: Arc<Mutex<Vec<String>>>,
}

impl Kannel {
    /// Starts bearerbox, fakesmsc and smsbox with the configuration for the node at
    /// `node_port`, and waits until `sendsms` answers. Each child lives at most `lifetime`.
    ///
    /// # Errors
    ///
    /// Kannel is not installed ([`INSTALL_HINT`]) or did not start.
    pub fn start(
        dir: &Path,
        ports: Ports,
        node_port: u16,
        secret: &str,
        lifetime: Duration,
    ) -> anyhow::Result<Self> {
        if !installed() {
            anyhow::bail!("{INSTALL_HINT}");
        }
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("kannel.conf"),
            config(dir, &ports, node_port, secret),
        )?;
        let mut k = Self {
            dir: dir.to_owned(),
            ports,
            lifetime,
            bearerbox: None,
            smsbox: None,
            fakesmsc: None,
            phones: None,
            delivered: Arc::default(),
        };
        k.bearerbox = Some(k.spawn(BEARERBOX, &["kannel.conf"], "bearerbox.out")?);
        wait_port(ports.smsc, Duration::from_secs(15))
            .context("bearerbox did not open its SMSC port")?;
        k.start_phones()?;
        k.start_smsbox()?;
        Ok(k)
    }

    fn spawn(&self, program: &str, args: &[&str], out: &str) -> anyhow::Result<Child> {
        let log = std::fs::File::create(self.dir.join(out))?;
        let child = Command::new("timeout")
            .arg("--kill-after=5")
            .arg(self.lifetime.as_secs().max(1).to_string())
            .arg(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        Ok(child)
    }

    /// fakesmsc in interactive mode: typed lines are sent, delivered ones are logged at debug.
    fn start_phones(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new("timeout")
            .arg("--kill-after=5")
            .arg(self.lifetime.as_secs().max(1).to_string())
            .arg(FAKESMSC)
            .args([
                "-H",
                "127.0.0.1",
                "-r",
                &self.ports.smsc.to_string(),
                "-i",
                "0",
                "-v",
                "0",
            ])
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start fakesmsc")?;
        self.phones = child.stdin.take();
        let stderr = child.stderr.take().context("fakesmsc stderr")?;
        let delivered = self.delivered.clone();
        std::thread::Builder::new()
            .name("fakesmsc".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(msg) = line.split("Got message ").nth(1) {
                        if let Some((_, body)) = msg.split_once(": <") {
                            let body = body.strip_suffix('>').unwrap_or(body);
                            delivered
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(body.to_owned());
                        }
                    }
                }
            })?;
        self.fakesmsc = Some(child);
        Ok(())
    }

    fn start_smsbox(&mut self) -> anyhow::Result<()> {
        self.smsbox = Some(self.spawn(SMSBOX, &["kannel.conf"], "smsbox.out")?);
        wait_port(self.ports.sendsms, Duration::from_secs(15))
            .context("smsbox did not open sendsms")
    }

    /// Stops smsbox (the node's `sendsms` calls fail; bearerbox keeps the phones connected).
    pub fn stop_smsbox(&mut self) {
        if let Some(mut c) = self.smsbox.take() {
            stop(&mut c);
        }
    }

    /// Starts smsbox again.
    ///
    /// # Errors
    ///
    /// It did not start.
    pub fn restart_smsbox(&mut self) -> anyhow::Result<()> {
        self.stop_smsbox();
        self.start_smsbox()
    }

    /// A phone `from` sends `text` to the short number.
    ///
    /// # Errors
    ///
    /// fakesmsc is gone.
    pub fn send(&mut self, from: &str, text: &str) -> anyhow::Result<()> {
        let phones = self.phones.as_mut().context("fakesmsc is not running")?;
        let line = format!("{from} 1708 text {text}\n");
        anyhow::ensure!(
            line.len() < 250,
            "fakesmsc reads lines of at most 255 bytes"
        );
        phones.write_all(line.as_bytes())?;
        phones.flush()?;
        Ok(())
    }

    /// A phone `from` sends a long message as concatenated parts (UDH `05 00 03 ref n i`, as
    /// phones do); bearerbox joins them before smsbox calls the node.
    ///
    /// # Errors
    ///
    /// fakesmsc is gone, or more than 255 parts.
    pub fn send_parts(&mut self, from: &str, reference: u8, parts: &[&str]) -> anyhow::Result<()> {
        let total = u8::try_from(parts.len())?;
        let phones = self.phones.as_mut().context("fakesmsc is not running")?;
        for (i, part) in parts.iter().enumerate() {
            let seq = u8::try_from(i + 1)?;
            let udh: String = [5u8, 0, 3, reference, total, seq]
                .iter()
                .map(|b| format!("%{b:02X}"))
                .collect();
            let data: String = part
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let line = format!("{from} 1708 udh {udh} {data}\n");
            anyhow::ensure!(
                line.len() < 250,
                "fakesmsc reads lines of at most 255 bytes"
            );
            phones.write_all(line.as_bytes())?;
            phones.flush()?;
            // One line per fakesmsc wake-up (it reads its input line by line).
            std::thread::sleep(Duration::from_millis(1100));
        }
        Ok(())
    }

    /// Every message delivered so far, parts of concatenated messages joined, in order.
    #[must_use]
    pub fn delivered(&self) -> Vec<Delivered> {
        let lines = self
            .delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        join_parts(&lines)
    }

    /// Waits until a delivered message satisfies `want` (up to `timeout`).
    pub fn wait_for(
        &self,
        timeout: Duration,
        want: impl Fn(&Delivered) -> bool,
    ) -> Option<Delivered> {
        wait_in(&self.delivered, timeout, want)
    }

    /// The delivered lines, shared (to wait on another thread: [`wait_in`]).
    #[must_use]
    pub fn delivered_handle(&self) -> Arc<Mutex<Vec<String>>> {
        self.delivered.clone()
    }

    /// The ports.
    #[must_use]
    pub const fn ports(&self) -> &Ports {
        &self.ports
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        self.phones = None;
        for c in [
            self.smsbox.take(),
            self.fakesmsc.take(),
            self.bearerbox.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut c = c;
            stop(&mut c);
        }
    }
}

/// Stops a child started under `timeout` (which leads its own process group, with the Kannel
/// program in it): `TERM` to the group, then `KILL` to the group if it has not ended within
/// five seconds. Killing `timeout` alone would leave the program running.
fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let signal = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal("-KILL");
    let _ = child.wait();
}

/// Waits until a message delivered into `lines` satisfies `want` (up to `timeout`).
pub fn wait_in(
    lines: &Mutex<Vec<String>>,
    timeout: Duration,
    want: impl Fn(&Delivered) -> bool,
) -> Option<Delivered> {
    let until = Instant::now() + timeout;
    loop {
        let now = lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(d) = join_parts(&now).into_iter().find(|d| want(d)) {
            return Some(d);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines `from to text …` or `from to udh UDH data TEXT` (urlcoded) as fakesmsc prints them,
/// with the parts of concatenated messages (UDH `05 00 03 ref total seq`) joined.
fn join_parts(lines: &[String]) -> Vec<Delivered> {
    let mut out = Vec::new();
    let mut parts: std::collections::HashMap<(String, u8), Vec<Option<String>>> =
        std::collections::HashMap::new();
    for line in lines {
        let mut f = line.splitn(4, ' ');
        let (_, Some(to), Some(kind), Some(rest)) = (f.next(), f.next(), f.next(), f.next()) else {
            continue;
        };
        match kind {
            "text" => out.push(Delivered {
                to: to.to_owned(),
                text: rest.to_owned(),
            }),
            "udh" => {
                let mut r = rest.splitn(3, ' ');
                let (Some(udh), _, Some(data)) = (r.next(), r.next(), r.next()) else {
                    continue;
                };
                let udh = urldecode(udh);
                let text = String::from_utf8_lossy(&urldecode(data)).into_owned();
                if let [5, 0, 3, reference, total, seq] = udh[..] {
                    let slot = parts
                        .entry((to.to_owned(), reference))
                        .or_insert_with(|| vec![None; usize::from(total)]);
                    if let Some(s) = slot.get_mut(usize::from(seq).saturating_sub(1)) {
                        *s = Some(text);
                    }
                    if slot.iter().all(Option::is_some) {
                        let joined = slot.iter().flatten().cloned().collect::<Vec<_>>().join(" ");
                        parts.remove(&(to.to_owned(), reference));
                        out.push(Delivered {
                            to: to.to_owned(),
                            text: joined,
                        });
                    }
                } else {
                    out.push(Delivered {
                        to: to.to_owned(),
                        text,
                    });
                }
            }
            _ => out.push(Delivered {
                to: to.to_owned(),
                text: String::from_utf8_lossy(&urldecode(rest.rsplit(' ').next().unwrap_or(rest)))
                    .into_owned(),
            }),
        }
    }
    out
}

fn urldecode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', ..) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 2;
            }
            (c, ..) => out.push(c),
        }
        i += 1;
    }
    out
}

fn wait_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < until, "port {port} did not open");
        std::thread::sleep(Duration::from_millis(50));
    }
}
