//! The `node_keys` table: public keys of this node and its peers with validity windows, and
//! this node's signing key file.

use std::path::Path;
use std::sync::Arc;

use diesel::prelude::*;

use crate::crypto::keys::{KeyError, KeyId, NodeKey, parse_public_key, public_key_text};
use crate::crypto::signing::{Keyring, PublicKey};
use crate::db::schema::node_keys;
use crate::db::{Db, DbConn, DbError};
use crate::domain::{NodeId, Timestamp};

/// A row of `node_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = node_keys)]
pub struct KeyRow {
    /// Key id.
    pub key_id: String,
    /// Owner node.
    pub origin: String,
    /// Public key, base64.
    pub public_key: String,
    /// Valid from, ms.
    pub valid_from_ms: i64,
    /// Valid until, ms (exclusive); `None` while current.
    pub valid_until_ms: Option<i64>,
}

/// Failure to set up or use keys.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// Key file problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Database problem.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A key in the table is malformed.
    #[error("stored key {0} is malformed")]
    Stored(String),
    /// The signing key file is missing and this command does not create one.
    #[error(
        "the signing key file {path} is missing; only `lapor-node init` or the first start of a \
         new node creates one. Restore it from the backup (`lapor-node restore`), or set \
         node.key_file to where it is"
    )]
    Missing {
        /// The key file as displayed.
        path: String,
    },
    /// The signing key file is missing but the database already holds this node's keys or
    /// events: a restored or mis-copied node, which a new key would fork.
    #[error(
        "the signing key file {path} is missing, but the database already holds this node's \
         {what}: this is a restored or mis-copied node, and a new key would fork its log. \
         Restore the key file from the backup (`lapor-node restore`), or set node.key_file to \
         where it is; refusing to create a new key"
    )]
    MissingOnExistingNode {
        /// The key file as displayed.
        path: String,
        /// What the database holds ("public key", "events").
        what: &'static str,
    },
}

impl From<diesel::result::Error> for KeysError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// Every known public key.
pub fn keyring(conn: &mut DbConn) -> Result<Keyring, KeysError> {
    let rows: Vec<KeyRow> = node_keys::table.select(KeyRow::as_select()).load(conn)?;
    rows.into_iter()
        .map(|r| {
            let bad = || KeysError::Stored(r.key_id.clone());
            let id = KeyId::parse(&r.key_id).map_err(|_| bad())?;
            let key = PublicKey {
                origin: NodeId::parse(&r.origin).map_err(|_| bad())?,
                key: parse_public_key(&r.public_key).map_err(|_| bad())?,
                valid_from: Timestamp::from_millis(r.valid_from_ms),
                valid_until: r.valid_until_ms.map(Timestamp::from_millis),
            };
            Ok((id, key))
        })
        .collect()
}

/// Records a public key if it is not known yet.
pub fn register(conn: &mut DbConn, row: &KeyRow) -> QueryResult<()> {
    let known: Option<String> = node_keys::table
        .find(&row.key_id)
        .select(node_keys::origin)
        .first(conn)
        .optional()?;
    if known.is_none() {
        diesel::insert_into(node_keys::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Loads this node's signing key from `path` and makes sure its public key is in `node_keys`.
/// Never creates a key: a missing file is [`KeysError::Missing`] (every command but `init` and
/// `serve` uses this).
pub fn load(db: &Db, node: &NodeId, path: &Path) -> Result<Arc<NodeKey>, KeysError> {
    if !path.exists() {
        return Err(KeysError::Missing {
            path: path.display().to_string(),
        });
    }
    let key = NodeKey::load(path)?;
    register_own(db, node, &key)?;
    Ok(Arc::new(key))
}

/// What of this node the database holds already, if anything: its public key or its events.
fn node_traces(db: &Db, node: &NodeId) -> Result<Option<&'static str>, KeysError> {
    use crate::db::schema::events;
    let mut conn = db.read()?;
    let keys: i64 = node_keys::table
        .filter(node_keys::origin.eq(node.as_str()))
        .count()
        .get_result(&mut conn)?;
    if keys > 0 {
        return Ok(Some("public key"));
    }
    let events: i64 = events::table
        .filter(events::origin.eq(node.as_str()))
        .count()
        .get_result(&mut conn)?;
    Ok((events > 0).then_some("events"))
}

/// Loads this node's signing key from `path`, creating it only for a truly new node (`init`,
/// the first `serve`): when the file is missing but the database already holds this node's
/// public key or events, it refuses ([`KeysError::MissingOnExistingNode`]) — a restored or
/// mis-copied node must get its key back, not a new one. Makes sure the public key is in
/// `node_keys`. The first key of a node is valid from the epoch (it signs the node's whole
/// history); later keys come from `keys rotate` with their own start.
pub fn load_or_create(db: &Db, node: &NodeId, path: &Path) -> Result<Arc<NodeKey>, KeysError> {
    let key = if path.exists() {
        NodeKey::load(path)?
    } else {
        if let Some(what) = node_traces(db, node)? {
            return Err(KeysError::MissingOnExistingNode {
                path: path.display().to_string(),
                what,
            });
        }
        if let Some(dir) = path.parent() {
            crate::crypto::keys::private_dir(dir).map_err(|cause| KeyError::Write {
                path: dir.display().to_string(),
                cause,
            })?;
        }
        let key = NodeKey::generate();
        key.save(path)?;
        tracing::info!(key = %key.id(), path = %path.display(), "created the node's signing key");
        key
    };
    register_own(db, node, &key)?;
    Ok(Arc::new(key))
}

/// Makes sure `key`'s public half is in `node_keys` as `node`'s (valid from the epoch when it
/// is not there yet).
fn register_own(db: &Db, node: &NodeId, key: &NodeKey) -> Result<(), KeysError> {
    let row = KeyRow {
        key_id: key.id().to_string(),
        origin: node.to_string(),
        public_key: public_key_text(&key.verifying_key()),
        valid_from_ms: 0,
        valid_until_ms: None,
    };
    db.write(move |c| register(c, &row).map_err(KeysError::from))
}

/// Rotates the node's signing key at `at`: a new key is generated and becomes valid from `at`;
/// the current key stays published, valid until `at`, so everything it signed still verifies.
/// A key statement signed by both keys ([`super::rotation`]) is stored in the same
/// transaction; peers pin the new key from it.
/// The old key file is kept beside the new one as `<key id>.retired.pem`. Run it with the node
/// stopped: a running node keeps signing with the key it loaded.
pub fn rotate(
    db: &Db,
    node: &NodeId,
    path: &Path,
    at: Timestamp,
) -> Result<(KeyId, KeyId), KeysError> {
    let old = NodeKey::load(path)?;
    let new = NodeKey::generate();
    let staged = path.with_extension("pem.new");
    if staged.exists() {
        std::fs::remove_file(&staged).map_err(|cause| KeyError::Write {
            path: staged.display().to_string(),
            cause,
        })?;
    }
    new.save(&staged)?;
    let (old_id, new_id) = (old.id().to_string(), new.id().to_string());
    let row = KeyRow {
        key_id: new_id.clone(),
        origin: node.to_string(),
        public_key: public_key_text(&new.verifying_key()),
        valid_from_ms: at.millis(),
        valid_until_ms: None,
    };
    let owner = node.to_string();
    let retiring = old_id.clone();
    let statement = super::rotation::statement_for(node.as_str(), &old, &new, at.millis())
        .map_err(|e| KeysError::Stored(format!("key statement: {e}")))?;
    db.write(move |c| {
        let n = diesel::update(
            node_keys::table
                .filter(node_keys::key_id.eq(&retiring))
                .filter(node_keys::origin.eq(&owner))
                .filter(node_keys::valid_until_ms.is_null()),
        )
        .set(node_keys::valid_until_ms.eq(Some(at.millis())))
        .execute(c)?;
        if n != 1 {
            return Err(KeysError::Stored(format!(
                "{retiring} is not this node's current key"
            )));
        }
        diesel::insert_into(node_keys::table)
            .values(&row)
            .execute(c)?;
        super::rotation::record(c, &statement, at.millis())?;
        Ok(())
    })?;
    let retired = path.with_file_name(format!("{}.retired.pem", old_id.replace(':', "_")));
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|cause| KeyError::Write {
            path: to.display().to_string(),
            cause,
        })
    };
    rename(path, &retired)?;
    rename(&staged, path)?;
    Ok((old.id().clone(), new.id().clone()))
}

/// This node's keys, oldest first: (id, valid from, valid until).
pub fn own_keys(conn: &mut DbConn, node: &NodeId) -> QueryResult<Vec<KeyRow>> {
    node_keys::table
        .filter(node_keys::origin.eq(node.as_str()))
        .order(node_keys::valid_from_ms.asc())
        .select(KeyRow::as_select())
        .load(conn)
}
