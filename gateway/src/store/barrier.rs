//! The power-loss barrier of [`crate::config::Durability::PowerLoss`].
//!
//! sled's flush writes its log with `sync_file_range` and only sometimes
//! calls `fsync`; it writes large page fragments to files under `blobs/` that
//! it never syncs, and it never syncs its `conf` file or its folders. A power
//! cut after such a flush lost everything accepted in the last moments, and
//! once left `conf` and the log 0 bytes long. After every flush this barrier
//! syncs what sled's recovery reads: each blob file new since the last
//! barrier and the `blobs/` folder, each other file of the database folder
//! (`conf`, snapshots) and the folder itself when it changed, and the log.
//!
//! Its cost stays flat as `blobs/` grows: a folder is listed only when its
//! modification time has moved since it was last listed (a file added to or
//! removed from a folder moves it), so a commit that wrote no blob costs one
//! `stat` per folder and one `fdatasync` of the log.

use std::{
    collections::HashSet,
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

/// The log file sled appends to; synced at every barrier.
const LOG: &str = "db";
/// The folder of sled's large page fragments, named by log sequence number.
const BLOBS: &str = "blobs";

/// A folder's modification time closer to now than this is not trusted to
/// change again: the kernel stamps folders from a coarse clock, so a file
/// added in the same tick as the listing could leave the time unchanged.
const SETTLED: Duration = Duration::from_secs(1);

/// How the barrier reaches the disk: the one place that syncs a path, so
/// that a test can see every sync the barrier asks for.
pub trait Disk: Send {
    /// Makes a file's data (and the metadata needed to read it) durable.
    fn sync_file(&mut self, path: &Path) -> io::Result<()>;
    /// Makes a folder's entries durable (a new file is found after a power cut).
    fn sync_folder(&mut self, path: &Path) -> io::Result<()>;
    /// The names in a folder; `None` if the folder does not exist.
    fn list(&mut self, path: &Path) -> io::Result<Option<Vec<String>>>;
    /// A folder's modification time; `None` if it does not exist.
    fn modified(&mut self, path: &Path) -> io::Result<Option<SystemTime>>;
}

/// The machine's file system.
pub struct RealDisk;

fn not_found_is_none<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

impl Disk for RealDisk {
    fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_data()
    }

    fn sync_folder(&mut self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }

    fn list(&mut self, path: &Path) -> io::Result<Option<Vec<String>>> {
        let Some(entries) = not_found_is_none(std::fs::read_dir(path))? else {
            return Ok(None);
        };
        let mut names = Vec::new();
        for entry in entries {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(Some(names))
    }

    fn modified(&mut self, path: &Path) -> io::Result<Option<SystemTime>> {
        not_found_is_none(std::fs::metadata(path).and_then(|m| m.modified()))
    }
}

/// A folder the barrier lists only when it changed.
struct Watched {
    path: PathBuf,
    /// Its modification time when it was last listed, if settled then.
    listed_at: Option<SystemTime>,
}

impl Watched {
    fn new(path: PathBuf) -> Self {
        Watched {
            path,
            listed_at: None,
        }
    }

    /// Its names if it changed since it was last listed (and exists).
    fn changed(&mut self, disk: &mut dyn Disk) -> io::Result<Option<Vec<String>>> {
        let Some(modified) = disk.modified(&self.path)? else {
            return Ok(None);
        };
        if self.listed_at == Some(modified) {
            return Ok(None);
        }
        let names = disk.list(&self.path)?;
        let settled = SystemTime::now()
            .duration_since(modified)
            .is_ok_and(|age| age >= SETTLED);
        self.listed_at = settled.then_some(modified);
        Ok(names)
    }
}

/// Syncs what a flush left in the page cache; see the module doc.
pub struct PowerLossBarrier<D: Disk = RealDisk> {
    disk: D,
    dir: Watched,
    blobs: Watched,
    /// Blob files are named by log sequence number; those up to this one are synced.
    synced_blobs_upto: u64,
    /// Files of the database folder already synced (sled writes `conf` once
    /// and each snapshot under a new name).
    synced_files: HashSet<String>,
}

impl PowerLossBarrier<RealDisk> {
    /// The barrier for the sled database in `dir`, which sled has just opened.
    pub fn open(dir: &Path) -> io::Result<Self> {
        PowerLossBarrier::open_on(dir, RealDisk)
    }
}

impl<D: Disk> PowerLossBarrier<D> {
    /// [`PowerLossBarrier::open`] through `disk`. Syncs everything once, and
    /// the folder holding `dir` (which opening may have just created).
    pub fn open_on(dir: &Path, mut disk: D) -> io::Result<Self> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            disk.sync_folder(parent)?;
        }
        let mut barrier = PowerLossBarrier {
            disk,
            dir: Watched::new(dir.to_path_buf()),
            blobs: Watched::new(dir.join(BLOBS)),
            synced_blobs_upto: 0,
            synced_files: HashSet::new(),
        };
        barrier.sync()?;
        Ok(barrier)
    }

    /// Makes everything sled flushed so far survive a power cut. Blob files
    /// go first: the log may point at them.
    pub fn sync(&mut self) -> io::Result<()> {
        self.sync_new_blobs()?;
        self.sync_database_folder()?;
        self.disk.sync_file(&self.dir.path.join(LOG))
    }

    fn sync_new_blobs(&mut self) -> io::Result<()> {
        let Some(names) = self.blobs.changed(&mut self.disk)? else {
            return Ok(());
        };
        let mut newest = self.synced_blobs_upto;
        for lsn in names.iter().filter_map(|n| n.parse::<u64>().ok()) {
            if lsn > self.synced_blobs_upto {
                self.disk
                    .sync_file(&self.blobs.path.join(lsn.to_string()))?;
                newest = newest.max(lsn);
            }
        }
        // Removals change the folder too; they need no sync to be safe.
        if newest > self.synced_blobs_upto {
            self.disk.sync_folder(&self.blobs.path)?;
            self.synced_blobs_upto = newest;
        }
        Ok(())
    }

    fn sync_database_folder(&mut self) -> io::Result<()> {
        let Some(names) = self.dir.changed(&mut self.disk)? else {
            return Ok(());
        };
        for name in names {
            if name == LOG || name == BLOBS || self.synced_files.contains(&name) {
                continue;
            }
            match self.disk.sync_file(&self.dir.path.join(&name)) {
                Ok(()) => {}
                // sled renames or removes a file it is replacing: nothing to keep.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            }
            self.synced_files.insert(name);
        }
        self.disk.sync_folder(&self.dir.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real disk, with a record of every sync and listing asked for.
    #[derive(Default)]
    struct Recorded {
        synced: Vec<PathBuf>,
        listed: Vec<PathBuf>,
    }

    struct Recording<'a>(&'a std::sync::Mutex<Recorded>);

    impl Disk for Recording<'_> {
        fn sync_file(&mut self, path: &Path) -> io::Result<()> {
            self.0.lock().unwrap().synced.push(path.to_path_buf());
            RealDisk.sync_file(path)
        }
        fn sync_folder(&mut self, path: &Path) -> io::Result<()> {
            self.0.lock().unwrap().synced.push(path.to_path_buf());
            RealDisk.sync_folder(path)
        }
        fn list(&mut self, path: &Path) -> io::Result<Option<Vec<String>>> {
            self.0.lock().unwrap().listed.push(path.to_path_buf());
            RealDisk.list(path)
        }
        fn modified(&mut self, path: &Path) -> io::Result<Option<SystemTime>> {
            RealDisk.modified(path)
        }
    }

    fn take(record: &std::sync::Mutex<Recorded>) -> Recorded {
        std::mem::take(&mut *record.lock().unwrap())
    }

    #[test]
    fn the_barrier_syncs_what_sled_recovery_reads_and_lists_only_changed_folders() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let db = sled::Config::new().path(&dir).open().unwrap();
        let record = std::sync::Mutex::new(Recorded::default());
        let mut barrier = PowerLossBarrier::open_on(&dir, Recording(&record)).unwrap();

        let opened = take(&record);
        for path in [
            parent.path().to_path_buf(),
            dir.clone(),
            dir.join("conf"),
            dir.join("db"),
        ] {
            assert!(opened.synced.contains(&path), "{path:?} synced at open");
        }

        // A large value goes to a blob file: the barrier syncs it and its folder.
        db.insert(b"big", vec![7u8; 600 * 1024]).unwrap();
        db.flush().unwrap();
        let blob_names = RealDisk.list(&dir.join("blobs")).unwrap().unwrap();
        assert!(
            !blob_names.is_empty(),
            "the large value went to a blob file"
        );
        barrier.sync().unwrap();
        let after_blob = take(&record);
        for name in &blob_names {
            let blob = dir.join("blobs").join(name);
            assert!(after_blob.synced.contains(&blob), "{blob:?} synced");
        }
        assert!(after_blob.synced.contains(&dir.join("blobs")));
        assert!(after_blob.synced.contains(&dir.join("db")));
        let db_at = after_blob.synced.iter().position(|p| *p == dir.join("db"));
        let blob_at = after_blob
            .synced
            .iter()
            .position(|p| p.starts_with(dir.join("blobs")));
        assert!(
            blob_at < db_at,
            "blob files are synced before the log that points at them"
        );

        // Once the folders have settled, a commit that wrote no blob lists
        // nothing and syncs the log alone: flat however many blobs there are.
        barrier.dir.listed_at = RealDisk.modified(&dir).unwrap();
        barrier.blobs.listed_at = RealDisk.modified(&dir.join("blobs")).unwrap();
        db.insert(b"small", b"x".to_vec()).unwrap();
        db.flush().unwrap();
        barrier.sync().unwrap();
        let quiet = take(&record);
        assert_eq!(quiet.synced, vec![dir.join("db")]);
        assert!(
            quiet.listed.is_empty(),
            "no folder listed: {:?}",
            quiet.listed
        );
    }

    #[test]
    fn a_folder_changed_within_the_coarse_clock_tick_is_listed_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut watched = Watched::new(dir.path().to_path_buf());
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        assert!(watched.changed(&mut RealDisk).unwrap().is_some());
        // Just modified: not trusted to move again for a file added now.
        assert!(watched.listed_at.is_none());
        assert!(watched.changed(&mut RealDisk).unwrap().is_some());
    }
}
