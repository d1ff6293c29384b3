//! The [`AllowSink`] of a resolver in the helper container (macOS, no system bus): the
//! daemon that started it answers on the channel it was handed
//! ([`alca_contract::resolver_channel`]), one call at a time. A call that times out or breaks
//! leaves the channel out of step, so every later call fails (SERVFAIL: closed, never open).

use std::os::fd::{FromRawFd, OwnedFd};

use alca_contract::internet::{InternetEntry, ResolvedAddrs};
use alca_contract::resolver_channel::{
    decode_line, encode_line, ResolverAnswer, ResolverCall, MAX_ANSWER_BYTES,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::Mutex;

use crate::sink::{followed_entries, AllowSink, SinkError, CALL_TIMEOUT};

struct Channel {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    broken: bool,
}

/// The daemon, over the channel.
pub struct ChannelSink {
    channel: Mutex<Channel>,
}

impl ChannelSink {
    /// Takes over descriptor `fd` (a connected unix stream socket). Needs a tokio runtime.
    ///
    /// # Safety
    /// `fd` must be an open descriptor this process owns and uses for nothing else.
    pub unsafe fn from_fd(fd: i32) -> std::io::Result<ChannelSink> {
        // SAFETY: the caller hands over `fd`.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Self::from_std(std::os::unix::net::UnixStream::from(owned))
    }

    /// Over an already connected stream.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> std::io::Result<ChannelSink> {
        stream.set_nonblocking(true)?;
        let (read, write) = UnixStream::from_std(stream)?.into_split();
        Ok(ChannelSink {
            channel: Mutex::new(Channel {
                reader: BufReader::new(read),
                writer: write,
                broken: false,
            }),
        })
    }

    async fn call(&self, call: &ResolverCall) -> Result<ResolverAnswer, SinkError> {
        let mut channel = self.channel.lock().await;
        if channel.broken {
            return Err(SinkError::Unreachable(
                "the channel to the helper's daemon broke; the resolver must be restarted \
                 (`alca up`)"
                    .into(),
            ));
        }
        let exchanged = tokio::time::timeout(CALL_TIMEOUT, exchange(&mut channel, call)).await;
        match exchanged {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                channel.broken = true;
                Err(SinkError::Unreachable(e))
            }
            Err(_) => {
                channel.broken = true;
                Err(SinkError::Unreachable(format!(
                    "the helper's daemon did not answer within {CALL_TIMEOUT:?}"
                )))
            }
        }
    }
}

async fn exchange(channel: &mut Channel, call: &ResolverCall) -> Result<ResolverAnswer, String> {
    channel
        .writer
        .write_all(&encode_line(call))
        .await
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let limit = MAX_ANSWER_BYTES as u64 + 1;
    let n = (&mut channel.reader)
        .take(limit)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 || !line.ends_with(b"\n") {
        return Err("the helper's daemon closed the channel".into());
    }
    line.pop();
    decode_line(&line, MAX_ANSWER_BYTES)
}

impl AllowSink for ChannelSink {
    async fn allow(&self, update: ResolvedAddrs) -> Result<(), SinkError> {
        let update = serde_json::to_string(&update)
            .map_err(|e| SinkError::Refused(format!("cannot encode the update: {e}")))?;
        match self.call(&ResolverCall::AllowResolved { update }).await? {
            ResolverAnswer::Allowed => Ok(()),
            ResolverAnswer::Refused(why) => Err(SinkError::Refused(why)),
            other => Err(SinkError::Refused(format!("unexpected answer {other:?}"))),
        }
    }

    async fn entries(&self, project: &str) -> Result<Option<Vec<(u16, InternetEntry)>>, SinkError> {
        let call = ResolverCall::InternetEntries {
            project: project.to_string(),
        };
        match self.call(&call).await? {
            ResolverAnswer::Entries(entries) => Ok(followed_entries(entries)),
            ResolverAnswer::Refused(why) => Err(SinkError::Refused(why)),
            other => Err(SinkError::Refused(format!("unexpected answer {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};

    #[tokio::test]
    async fn calls_wait_for_the_answer_and_a_silent_daemon_breaks_the_channel() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let sink = ChannelSink::from_std(ours).unwrap();
        let daemon = std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(theirs.try_clone().unwrap());
            let mut writer = theirs;
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.contains("allow_resolved"), "{line}");
            writer
                .write_all(&encode_line(&ResolverAnswer::Allowed))
                .unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            writer
                .write_all(&encode_line(&ResolverAnswer::Refused("not yours".into())))
                .unwrap();
            // Then silence, and the channel closes.
        });
        let update = ResolvedAddrs {
            project: "0123456789abcdef".into(),
            addrs: vec![],
        };
        sink.allow(update.clone()).await.unwrap();
        assert_eq!(
            sink.allow(update.clone()).await,
            Err(SinkError::Refused("not yours".into()))
        );
        daemon.join().unwrap();
        assert!(matches!(
            sink.allow(update.clone()).await,
            Err(SinkError::Unreachable(_))
        ));
        assert!(matches!(
            sink.entries("0123456789abcdef").await,
            Err(SinkError::Unreachable(_))
        ));
    }
}
