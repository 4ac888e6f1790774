//! Tracking codes drawn from a counter.
//!
//! A node numbers the reports it files (0, 1, 2, …) and turns each number into its tracking
//! code by a keyed permutation of the 30⁸ codes of its province: a Feistel network over two
//! halves of four symbols each, whose round function is SHA-256 of a secret key, the round and
//! the half. Codes are therefore unique by construction and, without the key, look random:
//! a citizen who holds codes learns nothing about the codes of other reports. The number is
//! stored with the ticket (`tickets.code_number`, a unique index that grows at its end) and a
//! code is found again by turning it back into its number. Codes this node did not draw from
//! its counter (other nodes' tickets, codes drawn at random before this scheme) are stored
//! without a number, under a unique index of their own.
//!
//! The key and the highest number reserved so far are kept in `tracking_code_books`, one row
//! per province code. Numbers are handed out from memory; the writer reserves them in blocks
//! of [`RESERVE_BLOCK`] in the transaction that stores the first ticket of a block, so a
//! restarted node continues after every number it may have used (a crash leaves a gap, which
//! is harmless). The unique index on the number is the last guard either way.
//!
//! On PostgreSQL several processes may share the database: each claims a block of
//! [`PROCESS_BLOCK`] numbers of its own when it opens the book (committed at once), so two
//! processes never hand out the same number; past its block a process reserves as above, and
//! a clash is caught by the lookup and the index (its report gets a fresh code).

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::prelude::*;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::db::DbConn;
use crate::db::schema::{tickets, tracking_code_books};
use crate::domain::{ProvinceCode, TrackingCode};

/// Codes per half (four symbols of thirty).
const HALF: u64 = 30u64.pow(4);
/// Codes per province: 30⁸.
pub const SPACE: u64 = HALF * HALF;
/// Feistel rounds.
const ROUNDS: u8 = 10;
/// Numbers reserved at a time.
pub const RESERVE_BLOCK: u64 = 4096;
/// Numbers a process claims for itself when it opens the book on PostgreSQL.
pub const PROCESS_BLOCK: u64 = 1 << 20;

/// Every code of the province has been issued.
#[derive(Debug, thiserror::Error)]
#[error("all {SPACE} tracking codes of province {0} have been issued")]
pub struct Exhausted(pub String);

/// The keyed permutation of `[0, SPACE)`.
struct Permutation {
    key: [u8; 32],
}

impl std::fmt::Debug for Permutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permutation(..)")
    }
}

impl Permutation {
    fn round(&self, round: u8, half: u64) -> u64 {
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update([round])
            .chain_update(half.to_le_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first) % HALF
    }

    /// `n` (below [`SPACE`]) to its image.
    fn forward(&self, n: u64) -> u64 {
        let (mut left, mut right) = (n / HALF, n % HALF);
        for i in 0..ROUNDS {
            let f = self.round(i, right);
            (left, right) = (right, (left + f) % HALF);
        }
        left * HALF + right
    }

    /// The inverse of [`Permutation::forward`].
    fn backward(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x / HALF, x % HALF);
        for i in (0..ROUNDS).rev() {
            let f = self.round(i, left);
            (left, right) = ((right + HALF - f) % HALF, left);
        }
        left * HALF + right
    }
}

/// Eight base-30 digits of `x` (below [`SPACE`]), most significant first.
fn digits(mut x: u64) -> [u8; 8] {
    let mut out = [0u8; 8];
    for d in out.iter_mut().rev() {
        // Below 30: the cast cannot truncate.
        *d = u8::try_from(x % 30).unwrap_or(0);
        x /= 30;
    }
    out
}

fn undigits(symbols: [u8; 8]) -> u64 {
    symbols.iter().fold(0u64, |acc, d| acc * 30 + u64::from(*d))
}

/// The tracking codes of one node: its province, key, and counter.
#[derive(Debug)]
pub struct CodeBook {
    province: ProvinceCode,
    permutation: Permutation,
    /// The next number to hand out.
    next: AtomicU64,
    /// Numbers below this are reserved in the database (as far as this process knows).
    reserved_end: AtomicU64,
}

impl CodeBook {
    /// A book with `key` that counts from `next`, taking the numbers below `next` as reserved
    /// (as [`CodeBook::open`] does with the stored reservation).
    #[must_use]
    pub const fn with_key(province: ProvinceCode, key: [u8; 32], next: u64) -> Self {
        Self {
            province,
            permutation: Permutation { key },
            next: AtomicU64::new(next),
            reserved_end: AtomicU64::new(next),
        }
    }

    /// Reads the book of `province`, creating it (a fresh random key, nothing reserved) on the
    /// first start. Run it in a write transaction.
    pub fn open(conn: &mut DbConn, province: &ProvinceCode) -> QueryResult<Self> {
        let stored: Option<(String, i64)> = tracking_code_books::table
            .find(province.as_str())
            .select((
                tracking_code_books::secret,
                tracking_code_books::reserved_end,
            ))
            .first(conn)
            .optional()?;
        let (key, reserved) = match stored {
            Some((secret, reserved)) => {
                let key = hex::decode(&secret)
                    .ok()
                    .and_then(|k| <[u8; 32]>::try_from(k).ok())
                    .ok_or_else(|| {
                        diesel::result::Error::DeserializationError(
                            format!(
                                "tracking_code_books: the key of province {province} is not 32 \
                                 bytes of hex"
                            )
                            .into(),
                        )
                    })?;
                (key, u64::try_from(reserved).unwrap_or(0))
            }
            None => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                diesel::insert_into(tracking_code_books::table)
                    .values((
                        tracking_code_books::province.eq(province.as_str()),
                        tracking_code_books::secret.eq(crate::crypto::to_hex(&key)),
                        tracking_code_books::reserved_end.eq(0i64),
                    ))
                    .execute(conn)?;
                (key, 0)
            }
        };
        let book = Self::with_key(province.clone(), key, reserved);
        if let DbConn::Pg(c) = conn {
            // A block of this process's own (see the module's doc).
            let block = i64::try_from(PROCESS_BLOCK).unwrap_or(i64::MAX);
            let end: i64 = diesel::update(tracking_code_books::table.find(province.as_str()))
                .set(
                    tracking_code_books::reserved_end.eq(tracking_code_books::reserved_end + block),
                )
                .returning(tracking_code_books::reserved_end)
                .get_result(c)?;
            let end = u64::try_from(end).unwrap_or(0).min(SPACE);
            book.next
                .store(end.saturating_sub(PROCESS_BLOCK), Ordering::Relaxed);
            book.reserved_end.store(end, Ordering::Relaxed);
        }
        Ok(book)
    }

    /// The province whose codes this book issues.
    #[must_use]
    pub const fn province(&self) -> &ProvinceCode {
        &self.province
    }

    /// The code of number `n` (below [`SPACE`]).
    #[must_use]
    pub fn code(&self, n: u64) -> TrackingCode {
        TrackingCode::from_symbols(&self.province, digits(self.permutation.forward(n % SPACE)))
    }

    /// The number `code` stands for, when it is a code of this book's province (whether or
    /// not it was issued).
    #[must_use]
    pub fn number(&self, code: &TrackingCode) -> Option<u64> {
        let (province, symbols) = code.symbols()?;
        (province == self.province.as_str()).then(|| self.permutation.backward(undigits(symbols)))
    }

    /// The stored number of a ticket's code: its number when it is a code of this province
    /// whose number has been reserved here, otherwise none. Used when a row is laid out anew
    /// (rebuild): a code this node drew from its counter gets its number back.
    #[must_use]
    pub fn stored_number(&self, code: &TrackingCode) -> Option<i64> {
        self.number(code)
            .filter(|n| *n < self.reserved_end.load(Ordering::Relaxed))
            .and_then(|n| i64::try_from(n).ok())
    }

    /// The next number and its code.
    pub fn draw(&self) -> Result<(i64, TrackingCode), Exhausted> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match i64::try_from(n) {
            Ok(stored) if n < SPACE => Ok((stored, self.code(n))),
            _ => Err(Exhausted(self.province.to_string())),
        }
    }

    /// Makes sure the numbers up to `highest` are reserved in the database, in the writer's
    /// transaction that stores tickets numbered up to `highest`: reserves the next block when
    /// `highest` reaches past what is reserved.
    pub fn reserve(&self, conn: &mut DbConn, highest: i64) -> QueryResult<()> {
        let highest = u64::try_from(highest).unwrap_or(0);
        if highest < self.reserved_end.load(Ordering::Relaxed) {
            return Ok(());
        }
        let end = highest.saturating_add(1 + RESERVE_BLOCK).min(SPACE);
        let end_db = i64::try_from(end).unwrap_or(i64::MAX);
        diesel::update(tracking_code_books::table.find(self.province.as_str()))
            .filter(tracking_code_books::reserved_end.lt(end_db))
            .set(tracking_code_books::reserved_end.eq(end_db))
            .execute(conn)?;
        self.reserved_end.fetch_max(end, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets what this process believes is reserved (its transaction was rolled back): the
    /// next group reserves again.
    pub fn forget_reservation(&self) {
        self.reserved_end.store(0, Ordering::Relaxed);
    }

    /// Whether any stored code of this province has no number (a code drawn at random before
    /// numbering, or another node's): then a newly drawn code must be checked against them.
    pub fn has_unnumbered(&self, conn: &mut DbConn) -> QueryResult<bool> {
        let prefix = format!("{}-", self.province);
        let end = format!("{}.", self.province);
        let found: Option<String> = crate::db::on_backend!(conn, c => tickets::table
            .filter(tickets::code_number.is_null())
            .filter(tickets::tracking_code.ge(&prefix))
            .filter(tickets::tracking_code.lt(&end))
            .select(tickets::tracking_code)
            .first(c)
            .optional())?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> CodeBook {
        CodeBook::with_key(ProvinceCode::parse("31").expect("province"), [7u8; 32], 0)
    }

    #[test]
    fn codes_are_well_formed_and_turn_back_into_their_numbers() {
        let b = book();
        for n in (0..2_000).chain([SPACE - 1, SPACE / 2, 123_456_789]) {
            let code = b.code(n);
            let parsed = TrackingCode::parse(code.as_str()).expect("well-formed");
            assert_eq!(parsed, code);
            assert!(code.as_str().starts_with("31-"));
            assert_eq!(b.number(&code), Some(n), "{code}");
        }
    }

    #[test]
    fn consecutive_numbers_give_distinct_unrelated_codes() {
        let b = book();
        let codes: std::collections::HashSet<String> =
            (0..20_000).map(|n| b.code(n).as_str().to_owned()).collect();
        assert_eq!(codes.len(), 20_000);
        // Neighbouring numbers share no common prefix beyond chance: count how often the
        // first symbol repeats between consecutive codes (1 in 30 expected).
        let firsts: Vec<u8> = (0..3_000)
            .map(|n| b.code(n).symbols().expect("symbols").1[0])
            .collect();
        let repeats = firsts.windows(2).filter(|w| w[0] == w[1]).count();
        assert!(
            repeats < 300,
            "first symbol repeated {repeats} times in 3000"
        );
    }

    #[test]
    fn another_key_gives_other_codes_and_foreign_provinces_have_no_number() {
        let a = book();
        let b = CodeBook::with_key(ProvinceCode::parse("31").expect("province"), [8u8; 32], 0);
        let same = (0..1_000).filter(|n| a.code(*n) == b.code(*n)).count();
        assert!(same < 5, "{same} of 1000 codes equal under two keys");
        let foreign = TrackingCode::parse("32-K7QX-9F2M").expect("code");
        assert_eq!(a.number(&foreign), None);
    }

    #[test]
    fn draw_counts_up_and_stored_numbers_need_a_reservation() {
        let b = book();
        let (n0, c0) = b.draw().expect("code");
        let (n1, c1) = b.draw().expect("code");
        assert_eq!((n0, n1), (0, 1));
        assert_ne!(c0, c1);
        // Nothing reserved yet: a code is not known as one of this node's numbered codes.
        assert_eq!(b.stored_number(&c0), None);
        b.reserved_end.store(2, Ordering::Relaxed);
        assert_eq!(b.stored_number(&c1), Some(1));
        let exhausted = CodeBook::with_key(ProvinceCode::parse("31").expect("p"), [1; 32], SPACE);
        assert!(exhausted.draw().is_err());
    }
}
