//! Users and groups by name or number (`--user`, `--group`,
//! `--unix-owner`, `--unix-group`), looked up in the system's account
//! database (NSS) once, when the flags or the config file are read.

use nix::unistd::{Gid, Group, Uid, User};

/// A user: its id and its primary group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The user `text` names (a name, or a number).
pub(crate) fn user(text: &str) -> Result<Account, String> {
    let found = match text.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(text),
    };
    match found {
        Ok(Some(user)) => Ok(Account {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }),
        Ok(None) => match text.parse::<u32>() {
            // A number without an account is still an id.
            Ok(uid) => Ok(Account { uid, gid: uid }),
            Err(_) => Err(format!(
                "no user {text:?} on this system (give a user name or a number)"
            )),
        },
        Err(err) => Err(format!("looking up user {text:?}: {err}")),
    }
}

/// The group `text` names (a name, or a number).
pub(crate) fn group(text: &str) -> Result<u32, String> {
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!(
            "no group {text:?} on this system (give a group name or a number)"
        )),
        Err(err) => Err(format!("looking up group {text:?}: {err}")),
    }
}

/// Drops root for good: the supplementary groups become just `gid`, then
/// the group and the user ids (real, effective and saved) become `gid`
/// and `uid`. Checked afterwards: getting root back must fail.
pub(crate) fn become_user(uid: u32, gid: u32) -> Result<(), String> {
    let fix = "start wasmserve as root to use --user, or leave it out";
    let gid = Gid::from_raw(gid);
    let uid = Uid::from_raw(uid);
    nix::unistd::setgroups(&[gid]).map_err(|err| format!("setgroups: {err} ({fix})"))?;
    nix::unistd::setgid(gid).map_err(|err| format!("setgid {gid}: {err} ({fix})"))?;
    nix::unistd::setuid(uid).map_err(|err| format!("setuid {uid}: {err} ({fix})"))?;
    if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err("root could be regained after dropping it".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_numbers_resolve_and_unknown_names_do_not() {
        assert_eq!(user("root").map(|account| account.uid), Ok(0));
        assert_eq!(user("0").map(|account| account.uid), Ok(0));
        assert_eq!(group("0"), Ok(0));
        assert!(user("no-such-user-here").is_err());
        assert!(group("no-such-group-here").is_err());
    }
}
