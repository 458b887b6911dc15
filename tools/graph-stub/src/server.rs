//! The HTTP side: one route answered like Meta, and the phone owner's reply posted to the
//! webhook like Meta posts it. Everything is printed, because watching the flow is the point.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use sandbox::meta::signature::sign;
use sandbox::meta::wire::{self, Business, Choice, ChoiceKind, Report, Status, User};

use crate::meta::{self, Content, GraphError, MessageSend};

/// Sends larger than this are not messages Meta takes.
const MAX_SEND_BYTES: usize = 64 * 1024;
/// Meta retries a delivery that is not answered 200; the stub tries this many times in all.
const REPLY_ATTEMPTS: u32 = 3;
/// Generous, because the first call into a function may wait for `cargo lambda watch` to
/// start (or rebuild) it.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// How the stub behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The phone number id sends must address (`SANDBOX_PHONE_NUMBER_ID`).
    pub phone_number_id: String,
    /// The sandbox number's digits, as Meta's deliveries carry them.
    pub display_number: String,
    /// The only Bearer token accepted; `None` accepts any non-empty token.
    pub access_token: Option<String>,
    /// The Meta app secret that signs webhook deliveries (`META_APP_SECRET`).
    pub app_secret: String,
    /// Where the phone owner's replies are posted.
    pub webhook_url: String,
    /// Whether the phone owner replies at all.
    pub auto_reply: bool,
    /// How long the phone owner takes to tap the button.
    pub reply_delay: Duration,
}

/// Listens on `127.0.0.1:port` and serves until the process ends.
pub async fn run(port: u16, config: Config) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    serve(listener, config).await
}

/// Serves on a bound listener (tests bind port 0). Fails only if the HTTP client cannot be built.
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let stub = Arc::new(Stub::new(config).map_err(std::io::Error::other)?);
    stub.announce(address);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: keep serving, without spinning.
                eprintln!("graph-stub: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let stub = Arc::clone(&stub);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let stub = Arc::clone(&stub);
                async move { Ok::<_, Infallible>(stub.handle(req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("graph-stub: connection error: {e}");
            }
        });
    }
}

struct Stub {
    config: Config,
    http: reqwest::Client,
    ids: Ids,
}

impl Stub {
    fn new(config: Config) -> Result<Self, reqwest::Error> {
        // The workspace's reqwest brings no crypto of its own: ring, as in the functions.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()?;
        Ok(Self {
            config,
            http,
            ids: Ids::new(),
        })
    }

    fn announce(&self, address: SocketAddr) {
        let c = &self.config;
        let replies = if c.auto_reply {
            format!(
                "{} ms after each accepted send the phone reports sent, delivered and read, then taps a template's button, echoes a text or picks an interactive message's first choice; deliveries go to {}",
                c.reply_delay.as_millis(),
                c.webhook_url
            )
        } else {
            "automatic replies are off".to_owned()
        };
        println!(
            "graph-stub: Meta's Graph API stand-in on http://{address}\n\
             \x20   sends    POST /{{version}}/{}/messages\n\
             \x20   replies  {replies}\n\
             \x20   refused  {} (Meta error 131030)",
            c.phone_number_id,
            meta::REJECT_RANGE
        );
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        match self.send(req).await {
            Ok(answer) => json(StatusCode::OK, &answer),
            Err(error) => {
                let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
                json(status, &error.body(&self.ids.fbtrace_id()))
            }
        }
    }

    /// `POST /{version}/{phone_number_id}/messages`, checked in Meta's order: path, token, body.
    async fn send(self: &Arc<Self>, req: Request<Incoming>) -> Result<Value, GraphError> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let number_id = match (&parts.method, segments.as_slice()) {
            (&Method::POST, [_version, number_id, "messages"]) => *number_id,
            _ => return Err(GraphError::unknown_path(path)),
        };
        if number_id != self.config.phone_number_id {
            return Err(GraphError::unknown_object(number_id));
        }
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let token_ok = match (&self.config.access_token, token) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(expected), Some(given)) => expected == given,
        };
        if !token_ok {
            println!("graph-stub: send refused: missing or wrong access token (Meta error 190)");
            return Err(GraphError::invalid_token());
        }
        let bytes = Limited::new(body, MAX_SEND_BYTES)
            .collect()
            .await
            .map_err(|e| GraphError::invalid_parameter(format!("unreadable body: {e}")))?
            .to_bytes();
        let send = MessageSend::parse(&bytes).map_err(GraphError::invalid_parameter)?;
        let shown = describe(&send);
        let kind = kind_of(&send);
        if meta::is_rejected(&send.digits) {
            println!(
                "graph-stub: {kind} send REFUSED (400, Meta error 131030: {} is the reject range)\n{shown}",
                meta::REJECT_RANGE
            );
            return Err(GraphError::not_in_allowed_list());
        }
        let message_id = self.ids.wamid();
        println!("graph-stub: {kind} send accepted (200)\n{shown}\n    message   {message_id}");
        if self.config.auto_reply {
            tokio::spawn(Arc::clone(self).play_phone(send.clone(), message_id.clone()));
        }
        Ok(meta::accepted(&send, &message_id))
    }

    /// The sandbox number, as the deliveries name it.
    fn business(&self) -> Business<'_> {
        Business {
            phone_number_id: &self.config.phone_number_id,
            display_number: &self.config.display_number,
        }
    }

    /// Plays the phone: after the delay, reports the message `sent`, `delivered` and `read`
    /// (with its tag, as Meta echoes it), then answers it: taps a template's button, echoes a
    /// text, picks an interactive message's first choice.
    async fn play_phone(self: Arc<Self>, send: MessageSend, message_id: String) {
        tokio::time::sleep(self.config.reply_delay).await;
        for status in [Report::Sent, Report::Delivered, Report::Read] {
            println!(
                "graph-stub: {message_id} is {}; posting the signed status",
                status.as_str()
            );
            let delivery = self.business().status(&Status {
                message_id: &message_id,
                status,
                timestamp: epoch_seconds(),
                recipient: User::Phone(&send.digits),
                tag: send.tag.as_deref(),
            });
            self.post_signed(delivery.to_string().into_bytes()).await;
        }
        let (content, shown) = match &send.content {
            Content::Template { .. } => {
                let payload = send.payload().unwrap_or(wire::BUTTON_TEXT).to_owned();
                let shown = format!("taps \"{}\"", wire::BUTTON_TEXT);
                (wire::Content::Button { payload }, shown)
            }
            Content::Text(body) => {
                let text = format!("Echo: {body}");
                let shown = format!("writes {text:?}");
                (wire::Content::Text(text), shown)
            }
            Content::Interactive {
                kind,
                first: Some((id, title)),
            } => {
                let kind = if kind == "list" {
                    ChoiceKind::ListReply
                } else {
                    ChoiceKind::ButtonReply
                };
                let shown = format!("picks {title:?}");
                let choice = Choice {
                    kind,
                    id: id.clone(),
                    title: title.clone(),
                    description: None,
                };
                (wire::Content::Choice(choice), shown)
            }
            Content::Interactive { first: None, .. } => (
                wire::Content::Text("Echo: ?".into()),
                "writes \"Echo: ?\"".into(),
            ),
        };
        let reply_id = self.ids.wamid();
        let delivery = self.business().message(&wire::Message {
            from: User::Phone(&send.digits),
            id: &reply_id,
            timestamp: epoch_seconds(),
            context: Some(&message_id),
            profile_name: "Local tester",
            content,
        });
        println!(
            "graph-stub: +{} {shown} in answer to {message_id}; posting a signed delivery to {}",
            send.digits, self.config.webhook_url
        );
        self.post_signed(delivery.to_string().into_bytes()).await;
    }

    /// Posts a delivery signed over exactly these bytes, retrying like Meta when the webhook
    /// does not answer 200.
    async fn post_signed(&self, body: Vec<u8>) {
        let signature = sign(self.config.app_secret.as_bytes(), &body);
        for attempt in 1..=REPLY_ATTEMPTS {
            let result = self
                .http
                .post(&self.config.webhook_url)
                .header(CONTENT_TYPE, "application/json")
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            match result {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    println!("graph-stub: webhook answered {status} {text}");
                    if status == StatusCode::OK {
                        return;
                    }
                }
                Err(e) => println!("graph-stub: webhook unreachable: {e}"),
            }
            if attempt < REPLY_ATTEMPTS {
                let wait = Duration::from_secs(2u64.pow(attempt));
                println!(
                    "graph-stub: retrying in {} s, as Meta would",
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
            }
        }
        println!("graph-stub: gave up on a delivery after {REPLY_ATTEMPTS} attempts");
    }
}

/// The send's type, as Meta names it.
fn kind_of(send: &MessageSend) -> &'static str {
    match send.content {
        Content::Template { .. } => "template",
        Content::Text(_) => "text",
        Content::Interactive { .. } => "interactive",
    }
}

/// The indented lines that describe a send.
fn describe(send: &MessageSend) -> String {
    let content = match &send.content {
        Content::Template {
            name,
            language,
            payload,
        } => format!(
            "    template  {name} ({language})\n    payload   {}",
            payload.as_deref().unwrap_or("(none)")
        ),
        Content::Text(body) => format!("    text      {body}"),
        Content::Interactive { kind, first } => format!(
            "    interactive {kind}, first choice {}",
            first.as_ref().map_or("(none)", |(_, title)| title.as_str())
        ),
    };
    format!(
        "    to        {}\n{content}\n    tag       {}",
        send.to,
        send.tag.as_deref().unwrap_or("(none)")
    )
}

fn json(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unique message and trace ids: the start time keeps them unique across restarts (the
/// service dedupes deliveries by message id), the counter within one run.
struct Ids {
    start: u64,
    next: AtomicU64,
}

impl Ids {
    fn new() -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            start,
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:X}{n:06}", self.start)
    }

    /// A `wamid.` message id, like every WhatsApp message id.
    fn wamid(&self) -> String {
        format!("wamid.STUB{}", self.next())
    }

    /// An `fbtrace_id`, Meta's support reference on every error.
    fn fbtrace_id(&self) -> String {
        format!("Stub{}", self.next())
    }
}
