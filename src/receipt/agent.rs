//! A minimal ssh-agent client: list keys and sign (draft-miller-ssh-agent).
//!
//! Only two requests are needed. Messages are `uint32 length || byte type ||
//! payload`; strings are `uint32 length || bytes`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use ssh_key::{PublicKey, Signature};

const SSH_AGENT_FAILURE: u8 = 5;
const SSH2_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH2_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH2_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH2_AGENT_SIGN_RESPONSE: u8 = 14;

/// Largest reply accepted; real replies are a few kilobytes.
const MAX_REPLY: usize = 256 * 1024;
/// Long enough for an agent that asks the user to confirm (`ssh-add -c`).
const TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Agent {
    stream: UnixStream,
}

impl Agent {
    pub(crate) fn connect(socket: &Path) -> Result<Agent, String> {
        let stream = UnixStream::connect(socket).map_err(|e| format!("cannot connect: {e}"))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| format!("cannot set timeout: {e}"))?;
        Ok(Agent { stream })
    }

    /// The agent's keys that this crate can parse (others are skipped).
    pub(crate) fn identities(&mut self) -> Result<Vec<PublicKey>, String> {
        let reply = self.request(SSH2_AGENTC_REQUEST_IDENTITIES, &[])?;
        let mut r = Reader(&reply);
        expect_type(&mut r, SSH2_AGENT_IDENTITIES_ANSWER, "list keys")?;
        let n = r.u32()?;
        let mut keys = Vec::new();
        for _ in 0..n {
            let blob = r.string()?;
            let _comment = r.string()?;
            if let Ok(key) = PublicKey::from_bytes(blob) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Ask the agent to sign `data` with `key`.
    pub(crate) fn sign(&mut self, key: &PublicKey, data: &[u8]) -> Result<Signature, String> {
        let blob = key
            .to_bytes()
            .map_err(|e| format!("cannot encode public key: {e}"))?;
        let mut payload = Vec::with_capacity(blob.len() + data.len() + 12);
        put_string(&mut payload, &blob)?;
        put_string(&mut payload, data)?;
        payload.extend_from_slice(&0u32.to_be_bytes()); // flags: none (ed25519)
        let reply = self.request(SSH2_AGENTC_SIGN_REQUEST, &payload)?;
        let mut r = Reader(&reply);
        expect_type(&mut r, SSH2_AGENT_SIGN_RESPONSE, "sign")?;
        let sig = r.string()?;
        Signature::try_from(sig).map_err(|e| format!("agent returned a malformed signature: {e}"))
    }

    fn request(&mut self, kind: u8, payload: &[u8]) -> Result<Vec<u8>, String> {
        let len = u32::try_from(payload.len() + 1).map_err(|_| "request too large".to_owned())?;
        let mut msg = Vec::with_capacity(payload.len() + 5);
        msg.extend_from_slice(&len.to_be_bytes());
        msg.push(kind);
        msg.extend_from_slice(payload);
        self.stream
            .write_all(&msg)
            .map_err(|e| format!("cannot send request: {e}"))?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| format!("no reply: {e}"))?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_REPLY {
            return Err(format!("reply of {len} bytes is not a valid agent message"));
        }
        let mut reply = vec![0u8; len];
        self.stream
            .read_exact(&mut reply)
            .map_err(|e| format!("truncated reply: {e}"))?;
        Ok(reply)
    }
}

fn expect_type(r: &mut Reader<'_>, want: u8, what: &str) -> Result<(), String> {
    match r.byte()? {
        t if t == want => Ok(()),
        SSH_AGENT_FAILURE => Err(format!(
            "the agent refused to {what} (locked, key not confirmed, or unsupported)"
        )),
        t => Err(format!("unexpected reply type {t} to a request to {what}")),
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) -> Result<(), String> {
    let len = u32::try_from(s.len()).map_err(|_| "field too large".to_owned())?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
    Ok(())
}

/// Bounds-checked reader over a reply; never panics on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("truncated agent reply".to_owned());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_short_input() {
        let mut r = Reader(&[0, 0, 0, 9, 1, 2]);
        assert!(r.string().is_err());
        let mut r = Reader(&[]);
        assert!(r.byte().is_err());
        let mut r = Reader(&[0, 0, 0, 2, 7, 8, 9]);
        assert_eq!(r.string().unwrap(), &[7, 8]);
        assert_eq!(r.byte().unwrap(), 9);
    }
}
