//! The load's HTTP client: each load worker owns one HTTP/1.1 connection (over TLS for an
//! `https://` URL) and sends its requests on it one after another, as wrk does.
//!
//! The bench runs on the cores of the server it measures, so what the client costs a
//! request is taken from the server. reqwest cost about 31 µs of CPU a request against the
//! hello-world (its URL parsing, header building, pool checkout and layers), so it drove the
//! hello-world at about half of wrk's rate, and every hello-world ratio it printed was about
//! twice what the throughput issue asks for (BENCHMARKS.md, run AH). reqwest still does
//! what is not timed: the setup, the drain and the checks.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls_platform_verifier::ConfigVerifierExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

/// The longest one request may take, connecting included, as reqwest's timeout had it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the load goes: the base URL's host and port, its path (a prefix of every
/// request's), and the TLS to speak for `https://`.
pub(crate) struct Target {
    host: String,
    port: u16,
    authority: HeaderValue,
    prefix: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    /// The target of `base`, an `http://` or `https://` URL. An `https://` one is verified
    /// against the system's roots, as reqwest (and so the rest of the bench) does.
    pub(crate) fn parse(base: &str) -> anyhow::Result<Target> {
        let uri: Uri = base.parse().map_err(|e| anyhow::anyhow!("{base} is not a URL: {e}"))?;
        let secure = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => anyhow::bail!("{base}: the URL must start with http:// or https://"),
        };
        let authority = uri.authority().ok_or_else(|| anyhow::anyhow!("{base} names no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tls = if secure {
            let mut config = ClientConfig::with_platform_verifier()
                .map_err(|e| anyhow::anyhow!("cannot load the system's certificate roots: {e}"))?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone())
                .map_err(|e| anyhow::anyhow!("{base}: {host} is not a TLS server name: {e}"))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Target {
            authority: HeaderValue::from_str(authority.as_str())
                .map_err(|e| anyhow::anyhow!("{base}: its host is not a header value: {e}"))?,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            host,
            port,
            tls,
        })
    }
}

/// Why a request got no answer; [`Failure::as_str`] is how the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Timeout,
    Connect,
    Transport,
}

impl Failure {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect error",
            Failure::Transport => "transport error",
        }
    }
}

/// An answer: its status and whole body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// One load worker's connection, opened on its first request and again after one failed.
pub(crate) struct Connection {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        Self { target, sender: None }
    }

    /// Sends `method` to the target's prefix followed by `path` (`/v1/holds`, or `""` for
    /// the URL itself) with `headers` and, if not empty, a JSON `body`.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Answer, Failure> {
        let uri = match format!("{}{path}", self.target.prefix) {
            whole if whole.is_empty() => Uri::from_static("/"),
            whole => Uri::try_from(whole).map_err(|_| Failure::Transport)?,
        };
        let has_body = !body.is_empty();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let fields = request.headers_mut();
        fields.insert(HOST, self.target.authority.clone());
        if has_body {
            fields.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in headers {
            fields.insert(name, value.clone());
        }
        let answer = match tokio::time::timeout(TIMEOUT, self.exchange(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(Failure::Timeout),
        };
        if answer.is_err() {
            // Whatever state it is in, the next request starts on a fresh connection.
            self.sender = None;
        }
        answer
    }

    /// Sends `request` on the connection, opening it first if there is none (or it closed).
    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, Failure> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            stale => stale.insert(connect(&self.target).await?),
        };
        if sender.ready().await.is_err() {
            // The server closed it between two requests (`connection: close`, or idle for
            // too long) before hyper saw: start again on a fresh one.
            *sender = connect(&self.target).await?;
            sender.ready().await.map_err(|_| Failure::Transport)?;
        }
        let response = sender.send_request(request).await.map_err(|_| Failure::Transport)?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|_| Failure::Transport)?.to_bytes();
        Ok(Answer { status, body })
    }
}

/// Opens a connection to `target` and hands it to hyper, whose task drives it until it
/// closes.
async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await.map_err(|_| Failure::Connect)?;
    // Small requests one at a time: Nagle would hold each back for the last one's ACK.
    tcp.set_nodelay(true).map_err(|_| Failure::Connect)?;
    match &target.tls {
        None => handshake(tcp).await,
        Some((connector, name)) => {
            let tls = connector.connect(name.clone(), tcp).await.map_err(|_| Failure::Connect)?;
            handshake(tls).await
        }
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, Failure>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|_| Failure::Connect)?;
    tokio::spawn(async move {
        // Its end (the server closed it, or it failed) shows as the sender closing.
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    #[test]
    fn a_target_keeps_the_urls_host_port_and_path() {
        let plain = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((plain.host.as_str(), plain.port, plain.prefix.as_str()), ("127.0.0.1", 8080, ""));
        assert!(plain.tls.is_none());
        let prefixed = Target::parse("http://usher.test/api/").unwrap();
        assert_eq!(
            (prefixed.port, prefixed.prefix.as_str(), prefixed.authority.to_str().unwrap()),
            (80, "/api", "usher.test")
        );
        let secure = Target::parse("https://[::1]").unwrap();
        assert_eq!((secure.host.as_str(), secure.port), ("::1", 443));
        assert!(secure.tls.is_some());
        let refused = Target::parse("ftp://usher.test").err().unwrap().to_string();
        assert!(refused.contains("must start with http:// or https://"), "{refused}");
    }

    /// Reads one request off `reader`: its head's lines, then as many body bytes as its
    /// `content-length` says.
    async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> (Vec<String>, String) {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        let length = head
            .iter()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|n| n.parse::<usize>().unwrap()))
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    #[tokio::test]
    async fn requests_share_one_connection_until_the_server_closes_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            // The first connection answers two requests and closes after the second.
            for close in [false, true] {
                let (stream, _) = listener.accept().await.unwrap();
                let mut stream = BufReader::new(stream);
                for last in [close, true] {
                    seen.push(read_request(&mut stream).await);
                    let ending = if last { "connection: close\r\n" } else { "" };
                    let answer = format!("HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n{ending}\r\n{{}}");
                    stream.get_mut().write_all(answer.as_bytes()).await.unwrap();
                    if last {
                        break;
                    }
                }
            }
            seen
        });
        let target = Arc::new(Target::parse(&format!("http://{address}/base")).unwrap());
        let mut connection = Connection::new(target);
        let key = (HeaderName::from_static("idempotency-key"), HeaderValue::from_static("k1"));
        for body in [r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#] {
            let answer = connection
                .send(Method::POST, "/v1/holds", std::slice::from_ref(&key), Bytes::from(body))
                .await
                .unwrap();
            assert_eq!((answer.status, &answer.body[..]), (StatusCode::ACCEPTED, &b"{}"[..]));
        }
        let seen = tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
        assert_eq!(seen.len(), 3, "two requests on the first connection, one on the second");
        for (i, (head, body)) in seen.iter().enumerate() {
            assert_eq!(head[0], "POST /base/v1/holds HTTP/1.1");
            let has = |line: &str| head.iter().any(|l| l.eq_ignore_ascii_case(line));
            assert!(
                has(&format!("host: {address}")) && has("content-type: application/json") && has("idempotency-key: k1"),
                "{head:?}"
            );
            assert_eq!(body, &format!(r#"{{"a":{}}}"#, i + 1));
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let mut connection = Connection::new(Arc::new(Target::parse(&format!("http://{address}")).unwrap()));
        let failed = connection.send(Method::GET, "/", &[], Bytes::new()).await.err();
        assert_eq!(failed, Some(Failure::Connect));
        assert!(connection.sender.is_none());
    }
}
