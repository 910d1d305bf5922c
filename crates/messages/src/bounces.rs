//! The inbound SMTP listener for reports that come back as e-mail (`[email]
//! bounce_listen`): the MTA that receives the return path's mail, or a mailbox
//! provider's feedback loop, hands DSNs and ARF reports here. Blocking I/O, one thread
//! per connection (at most [`MAX_CONNECTIONS`]): reports are few, and each is written to
//! the store before it is acknowledged, so a `250` means recorded and a store failure
//! answers `451` for the MTA to try again. Anything else (an autoreply, a person writing back) is accepted and
//! dropped, never bounced back.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use prossimo_bus::{Bus, Happened};
use prossimo_store::Store;

use crate::delivery::Deliveries;
use crate::inbound::read_report;

/// Connections served at once; more are told to come back later (421).
pub const MAX_CONNECTIONS: usize = 16;
/// The largest report accepted (a DSN carrying a whole original e-mail is well below).
pub const MAX_REPORT_BYTES: usize = 10 * 1024 * 1024;
/// A longer line is no SMTP (RFC 5321 allows 1000 octets; some MTAs send longer).
const MAX_LINE_BYTES: usize = 64 * 1024;
const IDLE: Duration = Duration::from_secs(60);

/// The running listener; [`BounceListener::stop`] stops it.
pub struct BounceListener {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BounceListener {
    /// Listens on `address` (`127.0.0.1:2525`), recording what comes in into `store`.
    pub fn start(store: Arc<Store>, address: &str, bus: Bus) -> std::io::Result<BounceListener> {
        let listener = TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("bounces".into())
            .spawn(move || accept(listener, store, bus, stop))?;
        tracing::info!(%address, "listening for bounces and complaints");
        Ok(BounceListener {
            address,
            stopping,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting; sessions under way finish on their own.
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the bounce listener failed");
        }
    }
}

/// The accept loop, on the listener's own thread (it polls, to notice a stop).
#[allow(clippy::disallowed_methods)] // sleeps on a thread of its own, never a runtime's
fn accept(listener: TcpListener, store: Arc<Store>, bus: Bus, stopping: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stopping.load(Ordering::SeqCst) {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "bounce listener: accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n");
            continue;
        }
        let (store, bus, active) = (Arc::clone(&store), bus.clone(), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("bounce-session".into())
            .spawn(move || {
                if let Err(e) = serve(stream, store, bus) {
                    tracing::debug!(error = %e, %peer, "bounce session ended");
                }
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "bounce listener: no thread for a session");
        }
    }
}

/// Where a session is in its transaction (RFC 5321 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeted,
    Hello,
    Mail,
    Rcpt,
}

/// One SMTP session: HELO/EHLO, MAIL, RCPT, DATA (dot-unstuffed), RSET, NOOP, QUIT.
/// Written here rather than with `mailin` (the crate `mailin-embedded` builds on) because
/// its parser refuses `MAIL FROM:<>`, the null sender every DSN is sent with (RFC 5321
/// §4.5.5), and any parameter but `BODY=`.
fn serve(stream: TcpStream, store: Arc<Store>, bus: Bus) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reports = Reports { store, bus };
    let mut say = |text: &str| -> std::io::Result<()> {
        writer.write_all(text.as_bytes())?;
        writer.write_all(b"\r\n")?;
        writer.flush()
    };
    say("220 prossimo ESMTP bounces")?;
    let mut stage = Stage::Greeted;
    let mut line = Vec::new();
    loop {
        if !read_line(&mut reader, &mut line)? {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                stage = Stage::Hello;
                say(&format!(
                    "250-prossimo\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_REPORT_BYTES}"
                ))?;
            }
            "HELO" => {
                stage = Stage::Hello;
                say("250 prossimo")?;
            }
            "MAIL" if stage == Stage::Greeted => say("503 5.5.1 Say hello first")?,
            "MAIL" if !upper_starts(command, "MAIL FROM:") => say("501 5.5.4 MAIL FROM:<address>")?,
            "MAIL" => {
                stage = Stage::Mail;
                say("250 2.1.0 OK")?;
            }
            "RCPT" if !matches!(stage, Stage::Mail | Stage::Rcpt) => say("503 5.5.1 MAIL first")?,
            "RCPT" if !upper_starts(command, "RCPT TO:") => say("501 5.5.4 RCPT TO:<address>")?,
            "RCPT" => {
                stage = Stage::Rcpt;
                say("250 2.1.5 OK")?;
            }
            "DATA" if stage != Stage::Rcpt => say("503 5.5.1 RCPT first")?,
            "DATA" => {
                say("354 End data with <CR><LF>.<CR><LF>")?;
                let message = read_data(&mut reader)?;
                stage = Stage::Hello;
                say(&match message {
                    Some(raw) => reports.take(&raw),
                    None => format!("552 5.3.4 Larger than {MAX_REPORT_BYTES} bytes"),
                })?;
            }
            "RSET" => {
                if stage != Stage::Greeted {
                    stage = Stage::Hello;
                }
                say("250 2.0.0 OK")?;
            }
            "NOOP" => say("250 2.0.0 OK")?,
            "QUIT" => {
                say("221 2.0.0 Bye")?;
                return Ok(());
            }
            _ => say("502 5.5.2 Command not implemented")?,
        }
    }
}

fn upper_starts(command: &str, prefix: &str) -> bool {
    command
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Reads one line (with its end) into `line`; false at the end of the stream or on a
/// line too long to be SMTP.
fn read_line(reader: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> std::io::Result<bool> {
    line.clear();
    let read = std::io::Read::take(&mut *reader, MAX_LINE_BYTES as u64).read_until(b'\n', line)?;
    Ok(read > 0 && line.ends_with(b"\n"))
}

/// The message after DATA, up to the lone `.`, dot-unstuffed; `None` when it was larger
/// than [`MAX_REPORT_BYTES`] (read to its end all the same, to keep the session in step).
fn read_data(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        if !read_line(reader, &mut line)? {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the message broke off",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(message));
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + content.len() > MAX_REPORT_BYTES {
            too_big = true;
            message.clear();
        } else if !too_big {
            message.extend_from_slice(content);
        }
    }
}

/// What a session does with each message: read it as a report and record it.
struct Reports {
    store: Arc<Store>,
    bus: Bus,
}

impl Reports {
    /// The reply to a message: 250 once recorded (or when it is not a report of ours),
    /// 451 when the store failed, so the MTA tries again.
    fn take(&mut self, raw: &[u8]) -> String {
        let Some(report) = read_report(raw) else {
            return "250 2.0.0 Accepted (not a report)".into();
        };
        let recorded = Deliveries::of(&self.store)
            .and_then(|deliveries| deliveries.record_inbound(&report, self.store.now_ms()));
        match recorded {
            Ok(Some((send, new))) => {
                if new {
                    tracing::info!(send = %send.idempotency_key, "report recorded");
                    self.bus.publish(Happened::EventsCommitted {
                        buyers: Arc::from([]),
                    });
                }
                "250 2.0.0 Recorded".into()
            }
            Ok(None) => "250 2.0.0 Accepted (not about a message of ours)".into(),
            Err(e) => {
                tracing::warn!(error = %e, "a report could not be recorded; the MTA will retry");
                "451 4.3.0 Not recorded, try again later".into()
            }
        }
    }
}
