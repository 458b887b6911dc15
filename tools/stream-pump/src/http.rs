//! A JSON POST over plain HTTP/1.1, one connection per request (`Connection: close`): all the
//! HTTP that DynamoDB Local's JSON API and `cargo lambda watch`'s invoke endpoint need.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A request that got no complete HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address does not resolve, or nothing accepts the connection.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// Sending the request or reading the answer failed (a read timeout included).
    #[error("{address}: {source}")]
    Io {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// What came back is not an HTTP/1.1 answer this client reads.
    #[error("{address}: malformed HTTP answer: {what}")]
    Malformed {
        /// `host:port`.
        address: String,
        /// Which part.
        #[source]
        what: MalformedPart,
    },
}

/// The part of an answer that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MalformedPart {
    /// No blank line ends the head.
    #[error("no end of the head")]
    Head,
    /// The status line is not `HTTP/1.x NNN …`.
    #[error("status line")]
    Status,
    /// A chunk of a chunked body.
    #[error("chunked body")]
    Chunk,
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The header fields, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// POSTs `body` to `http://{address}{path}` with `headers` besides `Host`, `Content-Length`
/// and `Connection: close`. `timeout` bounds the connect and each read or write.
pub fn post(
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, HttpError> {
    let connect = |source| HttpError::Connect {
        address: address.to_owned(),
        source,
    };
    let io = |source| HttpError::Io {
        address: address.to_owned(),
        source,
    };
    let socket = address
        .to_socket_addrs()
        .map_err(connect)?
        .next()
        .ok_or_else(|| connect(std::io::ErrorKind::AddrNotAvailable.into()))?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout).map_err(connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;

    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).map_err(io)?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse(&raw).map_err(|what| HttpError::Malformed {
        address: address.to_owned(),
        what,
    })
}

/// Reads a whole HTTP/1.1 answer (the server closed the connection after it).
pub fn parse(raw: &[u8]) -> Result<Answer, MalformedPart> {
    let end = find(raw, b"\r\n\r\n").ok_or(MalformedPart::Head)?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(MalformedPart::Status)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = answer
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    answer.body = if chunked {
        dechunk(rest)?
    } else {
        match answer.header("content-length").and_then(|v| v.parse().ok()) {
            Some(length) if length <= rest.len() => rest[..length].to_vec(),
            _ => rest.to_vec(),
        }
    };
    Ok(answer)
}

/// The body of a chunked answer.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, MalformedPart> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or(MalformedPart::Chunk)?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| MalformedPart::Chunk)?;
        // A size may carry extensions (`1a;name=value`).
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| MalformedPart::Chunk)?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or(MalformedPart::Chunk)?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or(MalformedPart::Chunk)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_length_answer_is_read() {
        let a =
            parse(b"HTTP/1.1 200 OK\r\nContent-Type: x\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("x"));
        assert_eq!(a.body, b"{}");
    }

    #[test]
    fn a_chunked_answer_is_dechunked() {
        let raw = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        let a = parse(raw).unwrap();
        assert_eq!(a.status, 400);
        assert_eq!(a.body, br#"{"a":1}"#);
    }

    #[test]
    fn a_cut_answer_is_malformed() {
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\n"),
            Err(MalformedPart::Head)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab"),
            Err(MalformedPart::Chunk)
        ));
        assert!(matches!(
            parse(b"SSH-2.0\r\n\r\n"),
            Err(MalformedPart::Status)
        ));
    }
}
