//! The contract's version discipline: every file of every released version
//! is listed with its SHA-256 in `wit/RELEASED.sha256`, and none may change
//! (a handler built against a version must link against every later host
//! exactly as it did). Each released version's folder, and the current one,
//! is described in `wit/README.md`.

use std::path::Path;

use sha2::{Digest, Sha256};

/// `wit/`, from this crate's folder.
fn wit_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
}

/// The released files and their digests, as `RELEASED.sha256` lists them.
fn released() -> Vec<(String, String)> {
    let list = std::fs::read_to_string(wit_dir().join("RELEASED.sha256"))
        .expect("read wit/RELEASED.sha256");
    list.lines()
        .filter_map(|line| {
            let (digest, path) = line.split_once("  ")?;
            Some((digest.to_owned(), path.to_owned()))
        })
        .collect()
}

#[test]
fn no_released_contract_file_has_changed() {
    let released = released();
    assert!(released.len() >= 9, "{released:?}");
    for (digest, path) in released {
        let bytes = std::fs::read(wit_dir().join(&path))
            .unwrap_or_else(|err| panic!("wit/{path} is released but cannot be read: {err}"));
        let now: String = Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            now, digest,
            "wit/{path} belongs to a released contract version and changed. Released versions never \
             change: restore it (git checkout wit/{path}); to add to the current version, copy its \
             released files to wit/VERSION/, give wit/ the next version, and list the new files in \
             wit/RELEASED.sha256 when that version is released (see wit/README.md)"
        );
    }
}

#[test]
fn every_file_of_a_version_folder_is_listed_as_released() {
    // `wit/` itself holds the current version, which may be in the making;
    // a folder `wit/X.Y.Z/` holds a released one, every file of it frozen.
    let released: Vec<String> = released().into_iter().map(|(_, path)| path).collect();
    let mut unlisted = Vec::new();
    let versions = std::fs::read_dir(wit_dir()).expect("read wit/").flatten();
    let mut folders: Vec<_> = versions
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_dir()
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert!(
        folders.len() >= 2,
        "no released version folders: {folders:?}"
    );
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)
            .expect("read a version folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path
                    .strip_prefix(wit_dir())
                    .expect("under wit/")
                    .to_string_lossy()
                    .into_owned();
                if !released.contains(&relative) {
                    unlisted.push(relative);
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "files of released versions missing from wit/RELEASED.sha256: {unlisted:?} (add them with `sha256sum` from wit/)"
    );
}
