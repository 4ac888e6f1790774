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

mod config;
mod phones;

pub use config::{Ports, SENDSMS_USER, config, node_toml};
use phones::join_parts;
pub use phones::{Delivered, wait_in};

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
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
