//! `lapor-node officer ...`: account management from the node's shell.

use std::io::BufRead;

use anyhow::Context as _;
use rand::seq::SliceRandom as _;

use super::Auth;
use super::model::{parse_role, role_name};
use crate::domain::{AgencyCode, Timestamp};

/// The alphabet of generated passwords: letters and digits without the look-alikes
/// `0 O o 1 I l i`, so a password read from a screen is typed right the first time.
const PASSWORD_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
/// Length of generated passwords (about 115 bits).
const PASSWORD_LEN: usize = 20;

/// Officer account commands.
#[derive(Debug, clap::Subcommand)]
pub enum OfficerCommand {
    /// Create an officer account. Without --password-stdin a random password is generated
    /// and printed once.
    Add {
        /// Account name: 3-64 characters of a-z, 0-9, '.', '_' or '-'.
        username: String,
        /// verifier, liaison, admin or analyst.
        #[arg(long)]
        role: String,
        /// The agency code of a liaison (e.g. DKI-DISHUB); other roles have none.
        #[arg(long)]
        agency: Option<String>,
        /// Read the password (at least 12 characters) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and revoke all its tokens.
    Disable {
        /// Account name.
        username: String,
    },
    /// Set a new password and revoke all the account's tokens (a disabled account stays
    /// disabled). Without --password-stdin a random password is generated and printed once.
    Reset {
        /// Account name.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
}

/// Runs a command; returns the lines to print.
pub fn run(auth: &Auth, cmd: OfficerCommand) -> anyhow::Result<Vec<String>> {
    run_with_input(auth, cmd, &mut std::io::stdin().lock())
}

/// Runs a command, reading a `--password-stdin` password from `input`.
pub fn run_with_input(
    auth: &Auth,
    cmd: OfficerCommand,
    input: &mut dyn BufRead,
) -> anyhow::Result<Vec<String>> {
    match cmd {
        OfficerCommand::Add {
            username,
            role,
            agency,
            password_stdin,
        } => {
            let role = parse_role(&role).with_context(|| {
                format!("unknown role {role:?}: use verifier, liaison, admin or analyst")
            })?;
            let agency = agency.as_deref().map(AgencyCode::parse).transpose()?;
            let (password, shown) = obtain_password(password_stdin, input)?;
            let officer = auth.add(&username, &password, role, agency, Timestamp::now())?;
            let mut line = format!(
                "added officer {} (role {}",
                officer.username,
                role_name(officer.role).unwrap_or("?")
            );
            if let Some(a) = &officer.agency {
                line.push_str(&format!(", agency {a}"));
            }
            line.push(')');
            Ok(std::iter::once(line).chain(shown).collect())
        }
        OfficerCommand::Disable { username } => {
            auth.disable(&username)?;
            Ok(vec![format!(
                "disabled officer {username}; its tokens are revoked"
            )])
        }
        OfficerCommand::Reset {
            username,
            password_stdin,
        } => {
            let (password, shown) = obtain_password(password_stdin, input)?;
            auth.reset_password(&username, &password)?;
            let line = format!("password of {username} reset; its tokens are revoked");
            Ok(std::iter::once(line).chain(shown).collect())
        }
        OfficerCommand::List => {
            let all = auth.list()?;
            if all.is_empty() {
                return Ok(vec!["no officers".to_owned()]);
            }
            Ok(all
                .into_iter()
                .map(|(o, disabled)| {
                    format!(
                        "{:<24} {:<9} {:<16} {}",
                        o.username,
                        role_name(o.role).unwrap_or("?"),
                        o.agency.as_ref().map_or("-", AgencyCode::as_str),
                        if disabled { "disabled" } else { "active" }
                    )
                })
                .collect())
        }
    }
}

/// The password to set, and the line showing it if it was generated.
fn obtain_password(
    from_stdin: bool,
    input: &mut dyn BufRead,
) -> anyhow::Result<(String, Option<String>)> {
    if from_stdin {
        let mut line = String::new();
        input
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(!password.is_empty(), "no password on standard input");
        Ok((password, None))
    } else {
        let password = generate_password();
        let shown = format!("password: {password}");
        Ok((password, Some(shown)))
    }
}

/// A random password of [`PASSWORD_LEN`] characters from [`PASSWORD_ALPHABET`].
fn generate_password() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..PASSWORD_LEN)
        .filter_map(|_| PASSWORD_ALPHABET.choose(&mut rng).copied().map(char::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_use_the_alphabet() {
        let a = generate_password();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        assert_ne!(a, generate_password());
        for c in b"0Oo1Iil" {
            assert!(!PASSWORD_ALPHABET.contains(c));
        }
    }
}
