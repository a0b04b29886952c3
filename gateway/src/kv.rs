//! Ordered key/value trees and transactions over them: the one interface
//! both storage engines give [`crate::store`].
//!
//! The store's logic (outbox, inbox and dedupe, cases, audit, positions,
//! retention, alerts) is written once, against [`Db`], [`Tree`] and
//! [`TxTree`]; an engine only keeps bytes under keys, in order, and runs a
//! closure over several trees as one transaction. So every guarantee the
//! store gives (one transaction per group of writes, permanent dedupe,
//! per-peer order, the serial audit chain, envelopes sealed at rest,
//! retention) holds on both engines by the same code.
//!
//! - **sled** ([`Db::Sled`]): the embedded default. A transaction is a sled
//!   transaction; durability is [`Db::flush`] (the store's group commit).
//! - **PostgreSQL** ([`Db::Postgres`], [`postgres`]): one table per tree (`k bytea PRIMARY
//!   KEY, v bytea`); a transaction is a `SERIALIZABLE` database
//!   transaction that first checks this node's lease epoch (fencing); a
//!   commit is durable when it returns, so [`Db::flush`] has nothing to do.
//!
//! A transaction's closure may run more than once ([`TxError::Conflict`]):
//! it must not keep state between runs.

pub mod postgres;

use std::ops::{Bound, RangeBounds};

use sled::{
    Transactional as _,
    transaction::{
        ConflictableTransactionError, TransactionError, TransactionalTree,
        UnabortableTransactionError,
    },
};

use crate::storage::{Backend, StoreError, TxError};

mod copy;
pub use copy::{Compared, Copied, compare, copy};

/// A stored key or value.
pub type Value = sled::IVec;

/// Entries of a tree, in key order (and backwards with `rev`), each read
/// able to fail on its own.
pub type Iter = Box<dyn DoubleEndedIterator<Item = Result<(Value, Value), StoreError>> + Send>;

/// One gateway's database in one engine.
#[derive(Clone)]
pub enum Db {
    /// sled, embedded.
    Sled(sled::Db),
    /// PostgreSQL, shared by the nodes of one gateway.
    Postgres(postgres::Pg),
}

impl Db {
    /// Opens the configured engine's database (`[storage] backend`): sled
    /// in `dir`, or a connection pool to `url` with the schema migrated. No
    /// lease is taken: writes to PostgreSQL need one ([`postgres::Pg::try_acquire`]).
    pub fn open(
        dir: &std::path::Path,
        settings: &crate::config::Storage,
    ) -> Result<Db, StoreError> {
        Db::open_naming(dir, settings, postgres::SettingNames::STORAGE)
    }

    /// [`Db::open`], its refusals and hints calling the connection settings
    /// by `names` (`migrate` names its flags).
    pub fn open_naming(
        dir: &std::path::Path,
        settings: &crate::config::Storage,
        names: postgres::SettingNames,
    ) -> Result<Db, StoreError> {
        settings
            .check_engine(names)
            .map_err(|(field, reason)| StoreError::Settings { field, reason })?;
        match settings.backend {
            Backend::Sled => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(std::sync::Arc::new(e)))?;
                let db = sled::Config::new()
                    .path(dir)
                    .cache_capacity(settings.cache_mb.saturating_mul(1024 * 1024))
                    .open()?;
                Ok(Db::Sled(db))
            }
            Backend::Postgres => {
                // check_engine refused a missing url; this keeps the type honest.
                let url = settings.url.as_ref().ok_or(StoreError::Settings {
                    field: names.url,
                    reason: "backend = \"postgres\" needs the database".into(),
                })?;
                Ok(Db::Postgres(postgres::Pg::open(
                    url.expose(),
                    settings.pool_size,
                    settings.tls_files(),
                    names,
                )?))
            }
        }
    }

    /// The tree `name`, created empty if new.
    pub fn open_tree(&self, name: &'static str) -> Result<Tree, StoreError> {
        match self {
            Db::Sled(db) => Ok(Tree::Sled(db.open_tree(name)?)),
            Db::Postgres(pg) => Ok(Tree::Postgres(postgres::PgTree {
                pg: pg.clone(),
                table: postgres::Pg::table(name)?,
            })),
        }
    }

    /// The tree that holds the health probe's key.
    pub fn default_tree(&self) -> Tree {
        match self {
            Db::Sled(db) => Tree::Sled((**db).clone()),
            Db::Postgres(pg) => Tree::Postgres(postgres::PgTree {
                pg: pg.clone(),
                table: postgres::DEFAULT_TABLE,
            }),
        }
    }

    /// Makes every write that finished before this call durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        match self {
            Db::Sled(db) => {
                db.flush()?;
                Ok(())
            }
            // A commit is durable when it returns.
            Db::Postgres(_) => Ok(()),
        }
    }

    /// Bytes the database takes on its disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        match self {
            Db::Sled(db) => Ok(db.size_on_disk()?),
            Db::Postgres(pg) => pg.size_on_disk(),
        }
    }

    /// Makes every later [`Db::generate_id`] give more than `id` (a copy
    /// holds keys its source's generator gave).
    pub fn ids_after(&self, id: u64) -> Result<(), StoreError> {
        match self {
            Db::Sled(db) => {
                while db.generate_id()? < id {}
                Ok(())
            }
            Db::Postgres(pg) => pg.ids_after(id),
        }
    }

    /// A number never given before by this database (for queue keys).
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        match self {
            Db::Sled(db) => Ok(db.generate_id()?),
            Db::Postgres(pg) => pg.generate_id(),
        }
    }
}

/// A tree of one database: keys in byte order.
#[derive(Clone)]
pub enum Tree {
    /// A sled tree.
    Sled(sled::Tree),
    /// A table of a PostgreSQL database.
    Postgres(postgres::PgTree),
}

impl Tree {
    /// The value under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.get(key)?),
            Tree::Postgres(tree) => tree.pg.get(tree.table, key.as_ref()),
        }
    }

    /// Keeps `value` under `key`, replacing what was there.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<Value>) -> Result<(), StoreError> {
        match self {
            Tree::Sled(tree) => {
                tree.insert(key.as_ref(), value.into())?;
                Ok(())
            }
            Tree::Postgres(_) => {
                let (key, value) = (key.as_ref(), value.into());
                transaction(&[self], |trees| trees[0].insert(key, value.clone()))
            }
        }
    }

    /// Removes `key`; returns what it held.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.remove(key)?),
            Tree::Postgres(_) => {
                let key = key.as_ref();
                transaction(&[self], |trees| trees[0].remove(key))
            }
        }
    }

    /// Entries with keys in `range`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let bounds = (owned(range.start_bound()), owned(range.end_bound()));
        match self {
            Tree::Sled(tree) => Box::new(tree.range::<Vec<u8>, _>(bounds).map(sled_item)),
            Tree::Postgres(tree) => Box::new(postgres::Pages::new(
                tree.pg.clone(),
                tree.table,
                bounds.0,
                bounds.1,
            )),
        }
    }

    /// Entries whose keys start with `prefix`.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        match self {
            Tree::Sled(tree) => Box::new(tree.scan_prefix(prefix).map(sled_item)),
            Tree::Postgres(tree) => {
                let prefix = prefix.as_ref();
                Box::new(postgres::Pages::new(
                    tree.pg.clone(),
                    tree.table,
                    Bound::Included(prefix.to_vec()),
                    postgres::successor(prefix),
                ))
            }
        }
    }

    /// Every entry.
    pub fn iter(&self) -> Iter {
        match self {
            Tree::Sled(tree) => Box::new(tree.iter().map(sled_item)),
            Tree::Postgres(tree) => Box::new(postgres::Pages::new(
                tree.pg.clone(),
                tree.table,
                Bound::Unbounded,
                Bound::Unbounded,
            )),
        }
    }

    /// The entry with the highest key.
    pub fn last(&self) -> Result<Option<(Value, Value)>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.last()?),
            Tree::Postgres(tree) => Ok(tree
                .pg
                .page(tree.table, &Bound::Unbounded, &Bound::Unbounded, true, 1)?
                .pop()),
        }
    }

    /// The entry with the highest key starting with `prefix`.
    pub fn last_with_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Option<(Value, Value)>, StoreError> {
        match self {
            Tree::Sled(_) => self.scan_prefix(prefix).next_back().transpose(),
            Tree::Postgres(tree) => {
                let prefix = prefix.as_ref();
                Ok(tree
                    .pg
                    .page(
                        tree.table,
                        &Bound::Included(prefix.to_vec()),
                        &postgres::successor(prefix),
                        true,
                        1,
                    )?
                    .pop())
            }
        }
    }

    /// How many entries the tree holds (counts them).
    pub fn len(&self) -> Result<usize, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.len()),
            Tree::Postgres(tree) => {
                Ok(usize::try_from(tree.pg.count(tree.table)?).unwrap_or(usize::MAX))
            }
        }
    }

    /// Whether the tree holds no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.is_empty()),
            Tree::Postgres(tree) => Ok(tree.pg.empty(tree.table)?),
        }
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.clear()?),
            Tree::Postgres(tree) => tree.pg.clear(tree.table),
        }
    }

    /// Replaces the value under `key` by `f(old)` (removes it for `None`)
    /// in one transaction, and returns the new value.
    pub fn update_and_fetch(
        &self,
        key: impl AsRef<[u8]>,
        f: impl Fn(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Value>, StoreError> {
        let key = key.as_ref();
        transaction(&[self], |trees| {
            let old = trees[0].get(key)?;
            let new = f(old.as_deref());
            match &new {
                Some(value) => trees[0].insert(key, value.clone())?,
                None => {
                    trees[0].remove(key)?;
                }
            }
            Ok(new.map(Value::from))
        })
    }

    /// Applies `batch` (inserts and removals) in one transaction.
    pub fn apply_batch(&self, batch: Batch) -> Result<(), StoreError> {
        transaction(&[self], |trees| {
            for (key, value) in &batch.0 {
                match value {
                    Some(value) => trees[0].insert(key, value.clone())?,
                    None => {
                        trees[0].remove(key)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Makes this tree's writes so far durable (the whole database's, in fact).
    pub fn flush(&self) -> Result<(), StoreError> {
        match self {
            Tree::Sled(tree) => {
                tree.flush()?;
                Ok(())
            }
            // A commit is durable when it returns.
            Tree::Postgres(_) => Ok(()),
        }
    }
}

/// Inserts and removals to apply together ([`Tree::apply_batch`]).
#[derive(Default)]
pub struct Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Batch {
    /// Keeps `value` under `key`.
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.0
            .push((key.as_ref().to_vec(), Some(value.as_ref().to_vec())));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.0.push((key.as_ref().to_vec(), None));
    }
}

fn owned(bound: Bound<&impl AsRef<[u8]>>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_ref().to_vec()),
        Bound::Excluded(key) => Bound::Excluded(key.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn sled_item(item: sled::Result<(Value, Value)>) -> Result<(Value, Value), StoreError> {
    item.map_err(StoreError::from)
}

/// A tree inside a transaction ([`transaction`]).
pub enum TxTree<'a> {
    /// A sled transactional tree.
    Sled(&'a TransactionalTree),
    /// A table inside a PostgreSQL transaction.
    Postgres(postgres::TxView<'a>),
}

impl TxTree<'_> {
    /// The value under `key`, as this transaction sees it.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, TxError> {
        match self {
            TxTree::Sled(tree) => tree.get(key).map_err(sled_tx_error),
            TxTree::Postgres(tree) => tree.get(key.as_ref()),
        }
    }

    /// Keeps `value` under `key` in this transaction.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<Value>) -> Result<(), TxError> {
        match self {
            TxTree::Sled(tree) => {
                tree.insert(key.as_ref(), value.into())
                    .map_err(sled_tx_error)?;
                Ok(())
            }
            TxTree::Postgres(tree) => {
                tree.insert(key.as_ref(), value.into().to_vec());
                Ok(())
            }
        }
    }

    /// Removes `key` in this transaction; returns what it held.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, TxError> {
        match self {
            TxTree::Sled(tree) => tree.remove(key.as_ref()).map_err(sled_tx_error),
            TxTree::Postgres(tree) => tree.remove(key.as_ref()),
        }
    }

    /// Whether each read is a round trip to a server (PostgreSQL), which
    /// [`TxTree::prefetch`] saves; not on sled, whose reads are in process.
    pub fn reads_are_round_trips(&self) -> bool {
        matches!(self, TxTree::Postgres(_))
    }

    /// Reads `keys` ahead in one round trip, for the gets that follow;
    /// nothing on sled.
    pub fn prefetch(&self, keys: &[Vec<u8>]) -> Result<(), TxError> {
        match self {
            TxTree::Sled(_) => Ok(()),
            TxTree::Postgres(tree) => tree.prefetch(keys),
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Sled(std::sync::Arc::new(error))
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(error: TransactionError<StoreError>) -> Self {
        match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => error.into(),
        }
    }
}

impl From<TxError> for ConflictableTransactionError<StoreError> {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Conflict => ConflictableTransactionError::Conflict,
            TxError::Abort(error) => ConflictableTransactionError::Abort(error),
        }
    }
}

fn sled_tx_error(error: UnabortableTransactionError) -> TxError {
    match error {
        UnabortableTransactionError::Conflict => TxError::Conflict,
        UnabortableTransactionError::Storage(error) => TxError::Abort(error.into()),
    }
}

/// Runs `f` over `trees` (all of one database) as one transaction: all of
/// its writes are kept or none. `f` runs again after a conflict; an
/// [`TxError::Abort`] keeps nothing and is returned.
pub fn transaction<T>(
    trees: &[&Tree],
    f: impl Fn(&[TxTree<'_>]) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    let Some(first) = trees.first() else {
        return f(&[]).map_err(|error| match error {
            TxError::Abort(error) => error,
            TxError::Conflict => StoreError::Closed,
        });
    };
    match first {
        Tree::Sled(_) => {
            let sled_trees: Vec<&sled::Tree> = trees
                .iter()
                .filter_map(|tree| match tree {
                    Tree::Sled(tree) => Some(tree),
                    Tree::Postgres(_) => None,
                })
                .collect();
            if sled_trees.len() != trees.len() {
                return Err(two_engines());
            }
            let result: Result<T, TransactionError<StoreError>> =
                sled_trees.as_slice().transaction(|views| {
                    let views: Vec<TxTree<'_>> = views.iter().map(TxTree::Sled).collect();
                    f(&views).map_err(ConflictableTransactionError::from)
                });
            result.map_err(StoreError::from)
        }
        Tree::Postgres(first) => {
            let tables: Vec<&'static str> = trees
                .iter()
                .filter_map(|tree| match tree {
                    Tree::Postgres(tree) => Some(tree.table),
                    Tree::Sled(_) => None,
                })
                .collect();
            if tables.len() != trees.len() {
                return Err(two_engines());
            }
            first.pg.transaction(&tables, f)
        }
    }
}

/// A transaction over trees of two engines (a bug).
fn two_engines() -> StoreError {
    postgres::PgError::new("one transaction over trees of two storage engines").into()
}
