//! Docker's engine API over its unix socket, for the queries, `network create` and `start` on
//! the hot path of `up` and `run`: each `docker` CLI call is a process start plus a round trip
//! (~20 ms), a request on the socket ~1 ms. Used only when the CLI would talk to that same
//! local socket (no `DOCKER_HOST` elsewhere, no other context); any answer this client does
//! not understand sends the caller back to the CLI, so the CLI stays the reference behaviour.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// Where the Docker CLI connects when nothing says otherwise.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// A local engine answers in milliseconds; this only bounds a wedged one.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The engine's socket, when the CLI would use it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineApi {
    socket: PathBuf,
}

/// One answer of the engine, or why the caller should use the CLI instead.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Ok(Value),
    NotFound,
    /// Any other status, an unreadable answer or no connection: ask the CLI.
    Unusable,
}

impl EngineApi {
    /// The socket the Docker CLI would use, from the environment and its config file; `None`
    /// when that is not a local unix socket (remote host, ssh, a named context).
    pub fn from_env() -> Option<EngineApi> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let config_dir = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker")));
        let current_context = config_dir
            .and_then(|d| std::fs::read_to_string(d.join("config.json")).ok())
            .and_then(|text| context_of_config(&text));
        socket_for(
            var("DOCKER_HOST").as_deref(),
            var("DOCKER_CONTEXT").as_deref(),
            current_context.as_deref(),
        )
        .map(|socket| EngineApi { socket })
    }

    /// `GET path`: the JSON body on 200, `NotFound` on 404.
    pub fn get(&self, path: &str) -> Reply {
        match self.request("GET", path, None) {
            Some((200, body)) => serde_json::from_slice(&body).map_or(Reply::Unusable, Reply::Ok),
            Some((404, _)) => Reply::NotFound,
            _ => Reply::Unusable,
        }
    }

    /// `POST path` without a body: `Ok(Null)` on 204 or 304 (done, or nothing to do).
    pub fn post(&self, path: &str) -> Reply {
        match self.request("POST", path, None) {
            Some((204 | 304, _)) => Reply::Ok(Value::Null),
            Some((404, _)) => Reply::NotFound,
            _ => Reply::Unusable,
        }
    }

    /// `POST path` with a JSON body: the JSON answer on 201 (created).
    pub fn create(&self, path: &str, body: &Value) -> Reply {
        match self.request("POST", path, Some(body)) {
            Some((201, answer)) => {
                serde_json::from_slice(&answer).map_or(Reply::Unusable, Reply::Ok)
            }
            _ => Reply::Unusable,
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Vec<u8>)> {
        let mut stream = UnixStream::connect(&self.socket).ok()?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body.as_bytes()).ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).ok()?;
        parse_response(&raw)
    }
}

/// The path segment for an object name, or `None` when the name holds anything a container,
/// network or image reference cannot (then the CLI, with its own checks, is asked).
pub fn name_segment(name: &str) -> Option<&str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    let plain = !name.is_empty() && !name.starts_with('/') && !name.contains("..");
    (plain && name.chars().all(allowed)).then_some(name)
}

/// Which socket the CLI would use, given `DOCKER_HOST`, `DOCKER_CONTEXT` and the config's
/// `currentContext` (the CLI's own order of precedence).
fn socket_for(host: Option<&str>, context: Option<&str>, current: Option<&str>) -> Option<PathBuf> {
    if let Some(host) = host {
        return host.strip_prefix("unix://").map(PathBuf::from);
    }
    match context.or(current) {
        None | Some("default") => Some(PathBuf::from(DEFAULT_SOCKET)),
        Some(_) => None,
    }
}

fn context_of_config(text: &str) -> Option<String> {
    let config: Value = serde_json::from_str(text).ok()?;
    config
        .get("currentContext")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(String::from)
}

/// Status and body of an HTTP/1.1 response read to its end (`Connection: close`), de-chunked
/// when the engine streamed it.
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(raw).ok()? else {
        return None;
    };
    let code = response.code?;
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let body = &raw[head_len..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some((code, body))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_follows_the_clis_precedence() {
        let default = Some(PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(socket_for(None, None, None), default);
        assert_eq!(socket_for(None, Some("default"), Some("remote")), default);
        assert_eq!(socket_for(None, None, Some("remote")), None);
        assert_eq!(socket_for(None, Some("remote"), None), None);
        assert_eq!(
            socket_for(Some("unix:///run/user/1000/docker.sock"), Some("x"), None),
            Some(PathBuf::from("/run/user/1000/docker.sock"))
        );
        assert_eq!(socket_for(Some("tcp://10.0.0.1:2375"), None, None), None);
        assert_eq!(socket_for(Some("ssh://me@box"), None, None), None);
    }

    #[test]
    fn config_context() {
        assert_eq!(
            context_of_config(r#"{"currentContext":"colima"}"#).as_deref(),
            Some("colima")
        );
        assert_eq!(context_of_config(r#"{"auths":{}}"#), None);
        assert_eq!(context_of_config("not json"), None);
    }

    #[test]
    fn plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(parse_response(plain), Some((200, b"{\"a\":1}".to_vec())));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((404, b"{\"a\":1}".to_vec())));
    }

    #[test]
    fn truncated_answers_are_unusable() {
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Le"), None);
        assert_eq!(parse_response(b"garbage"), None);
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"a\"";
        assert_eq!(parse_response(cut), None);
    }

    #[test]
    fn only_plain_names_go_into_a_path() {
        assert_eq!(name_segment("alca-1d278eea5dcb"), Some("alca-1d278eea5dcb"));
        assert_eq!(
            name_segment("alca-test/busybox:latest"),
            Some("alca-test/busybox:latest")
        );
        assert_eq!(name_segment("a b"), None);
        assert_eq!(name_segment("x?all=1"), None);
        assert_eq!(name_segment("../info"), None);
        assert_eq!(name_segment("/info"), None);
        assert_eq!(name_segment(""), None);
    }
}
