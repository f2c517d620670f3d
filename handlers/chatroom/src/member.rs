//! One member of the room: its name in the `members` bucket, and what it
//! says and hears.

use wasmserve_sdk::{Error, Request, channels, kv};

use crate::ROOM;

/// A member: a unique id (every message carries its sender's, so no one
/// hears their own lines) and a name.
pub(crate) struct Member {
    id: i64,
    name: String,
    members: kv::Bucket,
}

impl Member {
    /// Joins as `guest-N` and tells the room.
    pub(crate) fn join() -> Result<Self, Error> {
        let members = kv::open("members")?;
        let id = kv::open("default")?.increment("guests", 1)?;
        let name = format!("guest-{id}");
        members.set(&name, id.to_string().as_bytes())?;
        let me = Self { id, name, members };
        me.announce(&format!("* {} joined\n", me.name))?;
        Ok(me)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Leaves the member list and tells the room.
    pub(crate) fn leave(&self) -> Result<(), Error> {
        self.members.delete(&self.name)?;
        self.announce(&format!("* {} left\n", self.name))
    }

    /// Sends `text` to the room, tagged with this member's id.
    fn announce(&self, text: &str) -> Result<(), Error> {
        channels::publish(ROOM, format!("{} {text}", self.id).as_bytes())?;
        Ok(())
    }

    /// The text of a room message, unless this member sent it.
    pub(crate) fn heard<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        let space = payload.iter().position(|&b| b == b' ')?;
        let sender = std::str::from_utf8(&payload[..space]).ok()?;
        (sender.parse::<i64>().ok()? != self.id).then(|| &payload[space + 1..])
    }

    /// Acts on one line from the client; `false` when it leaves.
    pub(crate) fn said(&mut self, request: &Request, line: &str) -> Result<bool, Error> {
        match line.split_once(' ').unwrap_or((line, "")) {
            ("/quit", _) => {
                request.sendall(b"* bye\n")?;
                return Ok(false);
            }
            ("/who", _) => {
                let mut who = self.members.keys()?;
                who.sort();
                request.sendall(format!("* members: {}\n", who.join(", ")).as_bytes())?;
            }
            ("/nick", name) => self.rename(request, name.trim())?,
            _ if line.is_empty() => {}
            _ => self.announce(&format!("{}: {line}\n", self.name))?,
        }
        Ok(true)
    }

    /// `/nick NAME`: takes the name if it is free (a compare-and-swap, so
    /// two members cannot take it at once).
    fn rename(&mut self, request: &Request, name: &str) -> Result<(), Error> {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.".contains(c));
        if !valid {
            request.sendall(b"* names are 1 to 32 letters, digits, '-', '_' or '.'\n")?;
            return Ok(());
        }
        let mine = self.id.to_string();
        let taken = self.members.update(name, |holder| {
            holder.unwrap_or_else(|| mine.clone().into_bytes())
        })?;
        if taken != mine.as_bytes() {
            request.sendall(format!("* {name} is taken\n").as_bytes())?;
            return Ok(());
        }
        self.members.delete(&self.name)?;
        let old = std::mem::replace(&mut self.name, name.to_owned());
        self.announce(&format!("* {old} is now known as {name}\n"))
    }
}
