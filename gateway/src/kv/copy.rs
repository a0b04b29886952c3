//! Copying a gateway's whole database into another engine, and checking the
//! copy: what `retorno-gateway migrate` does to move a stopped sled gateway
//! onto PostgreSQL.
//!
//! Every tree of [`TREES`] is copied in key order, a batch at a time (each
//! batch one [`Tree::apply_batch`], so a transaction never holds a whole
//! tree), with its bytes as they are: envelopes sealed at rest stay sealed
//! under the same keys, because the associated data of a seal binds the tree
//! and the key, and neither changes. The target must be empty: a copy never
//! overwrites or mixes with entries already there.
//!
//! [`compare`] then reads both databases side by side, in key order, one
//! entry at a time (never a whole tree in memory), and says per tree whether
//! the target holds exactly the source's entries.

use crate::storage::{StoreError, TREES};

use super::{Batch, Db, Tree};

/// At most this many entries per batch: a few hundred keeps each
/// transaction short on either engine.
const BATCH_ENTRIES: usize = 500;

/// At most this many bytes (keys and values) per batch, whatever the count:
/// a tree of large envelopes still goes in transactions of a few MiB.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What [`copy`] copied: the entries of each tree, in [`TREES`] order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Each tree's name and how many entries were copied into it.
    pub trees: Vec<(&'static str, u64)>,
}

impl Copied {
    /// Every entry copied, all trees together.
    pub fn total(&self) -> u64 {
        self.trees.iter().map(|(_, count)| count).sum()
    }
}

/// Copies every tree of [`TREES`] from `from` into `to`, which must hold no
/// entry in any of them, and makes the copy durable. A target that is not
/// empty is refused before anything is written, naming its first tree that
/// holds entries. Whoever calls this must make sure nothing writes to
/// `from` meanwhile (a stopped gateway, whose database lock `migrate` holds).
pub fn copy(from: &Db, to: &Db) -> Result<Copied, StoreError> {
    for &name in TREES {
        if !to.open_tree(name)?.is_empty()? {
            return Err(StoreError::TargetNotEmpty { tree: name });
        }
    }
    let mut copied = Copied::default();
    for &name in TREES {
        let count = copy_tree(&from.open_tree(name)?, &to.open_tree(name)?)?;
        copied.trees.push((name, count));
    }
    // The country that owns the source owns the copy.
    let country = crate::store::COUNTRY_KEY;
    if let Some(owner) = from.default_tree().get(country)? {
        to.default_tree().insert(country, &owner)?;
    }
    // Keys the source gave from its id generator (queued alert events) were
    // copied: the target's generator must never give them again.
    to.ids_after(from.generate_id()?)?;
    to.flush()?;
    Ok(copied)
}

/// Copies one tree in key order, a batch at a time; returns its entries.
fn copy_tree(from: &Tree, to: &Tree) -> Result<u64, StoreError> {
    let mut count = 0;
    let mut batch = Batch::default();
    let (mut entries, mut bytes) = (0, 0);
    for item in from.iter() {
        let (key, value) = item?;
        bytes += key.len() + value.len();
        batch.insert(&key, &value);
        entries += 1;
        if entries == BATCH_ENTRIES || bytes >= BATCH_BYTES {
            to.apply_batch(std::mem::take(&mut batch))?;
            count += entries as u64;
            (entries, bytes) = (0, 0);
        }
    }
    if entries > 0 {
        to.apply_batch(batch)?;
        count += entries as u64;
    }
    Ok(count)
}

/// How one tree of the target compares with the same tree of the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compared {
    /// The tree.
    pub tree: &'static str,
    /// Entries in the source.
    pub source: u64,
    /// Entries in the target.
    pub target: u64,
    /// The position (1 for the first, in key order) of the first entry
    /// whose key or value differs, or that one side lacks; `None` when the
    /// two trees hold the same keys and values.
    pub first_difference: Option<u64>,
}

impl Compared {
    /// Whether the target holds exactly the source's entries.
    pub fn same(&self) -> bool {
        self.first_difference.is_none()
    }
}

/// Compares every tree of [`TREES`] in `from` and `to`, entry by entry in
/// key order, reading both as streams.
pub fn compare(from: &Db, to: &Db) -> Result<Vec<Compared>, StoreError> {
    TREES
        .iter()
        .map(|&name| compare_tree(name, &from.open_tree(name)?, &to.open_tree(name)?))
        .collect()
}

fn compare_tree(name: &'static str, from: &Tree, to: &Tree) -> Result<Compared, StoreError> {
    let mut compared = Compared {
        tree: name,
        source: 0,
        target: 0,
        first_difference: None,
    };
    let (mut source, mut target) = (from.iter(), to.iter());
    loop {
        let pair = (source.next().transpose()?, target.next().transpose()?);
        let same = match &pair {
            (None, None) => return Ok(compared),
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        compared.source += u64::from(pair.0.is_some());
        compared.target += u64::from(pair.1.is_some());
        if !same && compared.first_difference.is_none() {
            compared.first_difference = Some(compared.source.max(compared.target));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sled_db() -> Db {
        Db::Sled(sled::Config::new().temporary(true).open().unwrap())
    }

    /// More outbox entries than two batches hold, a value larger than a
    /// batch's byte bound, a few entries elsewhere, and empty trees.
    fn filled() -> Db {
        let db = sled_db();
        let outbox = db.open_tree("outbox").unwrap();
        for i in 0..(2 * BATCH_ENTRIES as u64 + 37) {
            let key = [b"GT".as_slice(), &i.to_be_bytes()].concat();
            outbox
                .insert(key, format!("sealed envelope {i}").into_bytes())
                .unwrap();
        }
        let inbox = db.open_tree("inbox").unwrap();
        inbox
            .insert(1u64.to_be_bytes(), vec![7u8; BATCH_BYTES + 1])
            .unwrap();
        inbox.insert(2u64.to_be_bytes(), vec![0u8, 255, 1]).unwrap();
        let audit = db.open_tree("audit").unwrap();
        for seq in 1..=3u64 {
            audit
                .insert(seq.to_be_bytes(), vec![seq as u8; 40])
                .unwrap();
        }
        let cases = db.open_tree("cases").unwrap();
        cases.insert(b"case/MX-2026-0001", b"{}".to_vec()).unwrap();
        cases.insert(b"family/MX/1", Vec::new()).unwrap();
        db
    }

    fn entries(db: &Db, tree: &'static str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let tree = db.open_tree(tree).unwrap();
        tree.iter()
            .map(|item| {
                let (key, value) = item.unwrap();
                (key.to_vec(), value.to_vec())
            })
            .collect()
    }

    #[test]
    fn every_tree_is_copied_byte_for_byte_and_compares_the_same() {
        let (from, to) = (filled(), sled_db());
        // Queue keys the source's generator gave are never given again by the copy's.
        for _ in 0..1000 {
            from.generate_id().unwrap();
        }
        let copied = copy(&from, &to).unwrap();
        assert!(to.generate_id().unwrap() > 1000);
        let count = |name| copied.trees.iter().find(|(t, _)| *t == name).unwrap().1;
        assert_eq!(copied.trees.len(), TREES.len());
        assert_eq!(count("outbox"), 2 * BATCH_ENTRIES as u64 + 37);
        assert_eq!(count("inbox"), 2);
        assert_eq!(count("audit"), 3);
        assert_eq!(count("cases"), 2);
        assert_eq!(count("alerts"), 0);
        assert_eq!(copied.total(), 2 * BATCH_ENTRIES as u64 + 37 + 7);
        for &tree in TREES {
            assert_eq!(entries(&from, tree), entries(&to, tree), "{tree}");
        }
        let compared = compare(&from, &to).unwrap();
        assert!(compared.iter().all(Compared::same), "{compared:?}");
        let outbox = compared.iter().find(|c| c.tree == "outbox").unwrap();
        assert_eq!(
            (outbox.source, outbox.target),
            (2 * BATCH_ENTRIES as u64 + 37, 2 * BATCH_ENTRIES as u64 + 37)
        );
    }

    #[test]
    fn a_target_that_is_not_empty_is_refused_and_left_as_it_was() {
        let (from, to) = (filled(), sled_db());
        let cases = to.open_tree("cases").unwrap();
        cases
            .insert(b"case/GT-2026-0009", b"theirs".to_vec())
            .unwrap();
        let before: Vec<_> = TREES.iter().map(|&t| entries(&to, t)).collect();
        let error = copy(&from, &to).unwrap_err();
        assert!(
            matches!(error, StoreError::TargetNotEmpty { tree: "cases" }),
            "{error}"
        );
        assert!(error.to_string().contains("cases"), "{error}");
        let after: Vec<_> = TREES.iter().map(|&t| entries(&to, t)).collect();
        assert_eq!(before, after, "nothing was written");
    }

    #[test]
    fn a_missing_an_extra_or_a_changed_entry_is_found_at_its_place() {
        let (from, to) = (filled(), sled_db());
        copy(&from, &to).unwrap();
        let find = |compared: &[Compared], tree| {
            compared.iter().find(|c| c.tree == tree).cloned().unwrap()
        };
        // inbox: its 2nd value changed; audit: its 3rd entry gone; alerts: one more.
        to.open_tree("inbox")
            .unwrap()
            .insert(2u64.to_be_bytes(), vec![0u8, 255, 2])
            .unwrap();
        to.open_tree("audit")
            .unwrap()
            .remove(3u64.to_be_bytes())
            .unwrap();
        to.open_tree("alerts")
            .unwrap()
            .insert(b"a/x", vec![1])
            .unwrap();
        let compared = compare(&from, &to).unwrap();
        let inbox = find(&compared, "inbox");
        assert_eq!(
            (inbox.source, inbox.target, inbox.first_difference),
            (2, 2, Some(2))
        );
        let audit = find(&compared, "audit");
        assert_eq!(
            (audit.source, audit.target, audit.first_difference),
            (3, 2, Some(3))
        );
        let alerts = find(&compared, "alerts");
        assert_eq!(
            (alerts.source, alerts.target, alerts.first_difference),
            (0, 1, Some(1))
        );
        assert!(find(&compared, "outbox").same());
    }
}
