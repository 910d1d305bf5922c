//! Reports that come back as e-mail: delivery status notifications (RFC 3464: the
//! receiving side says an e-mail could not be delivered) and abuse reports (RFC 5965 ARF:
//! a mailbox provider's feedback loop says the customer marked it as spam). The MIME is
//! read by `mail-parser`; the report's own fields (header-like blocks) here. Which send
//! a report is about comes from the original message's `Message-ID`, which every send's
//! is derived from its key.

use mail_parser::{MessageParser, MimeHeaders};

use crate::delivery::{Bounce, Report};

/// What an inbound e-mail reports, and about which of our e-mails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundReport {
    /// The `Message-ID` of the e-mail it is about (without `<>`).
    pub about: Option<String>,
    /// `None`: nothing to record (a delay notice, a success notice).
    pub report: Option<Report>,
}

/// Reads a DSN or an ARF report; `None` when `raw` is neither (an autoreply, a person
/// writing back).
pub fn read_report(raw: &[u8]) -> Option<InboundReport> {
    let message = MessageParser::default().parse(raw)?;
    let top = message.content_type()?;
    if !(top.ctype().eq_ignore_ascii_case("multipart")
        && top
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report")))
    {
        return None;
    }
    let report_type = top.attribute("report-type")?.to_ascii_lowercase();
    let mut fields = None;
    let mut about = None;
    for part in message.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let kind = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase()
        );
        match kind.as_str() {
            "message/delivery-status" | "message/feedback-report" => {
                fields = Some(blocks(&String::from_utf8_lossy(part.contents())));
            }
            "message/rfc822" | "text/rfc822-headers" | "message/rfc822-headers" => {
                let original = part.contents();
                about = MessageParser::default()
                    .parse_headers(original)
                    .and_then(|m| m.message_id().map(str::to_owned))
                    .or(about);
            }
            _ => {}
        }
    }
    let fields = fields?;
    let report = match report_type.as_str() {
        "delivery-status" => bounce_of(&fields),
        "feedback-report" => Some(Report::Complained {
            feedback_type: first(&fields, "feedback-type").unwrap_or_else(|| "abuse".into()),
        }),
        _ => return None,
    };
    Some(InboundReport { about, report })
}

/// A DSN's verdict: its first per-recipient block that failed (5.x.x: hard; 4.x.x or
/// none: soft), or nothing when every recipient was delayed, relayed or delivered.
fn bounce_of(blocks: &[Vec<(String, String)>]) -> Option<Report> {
    blocks.iter().skip(1).find_map(|block| {
        let field = |name: &str| {
            block
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        if !field("action").is_some_and(|a| a.eq_ignore_ascii_case("failed")) {
            return None;
        }
        let status = field("status").unwrap_or_default();
        let diagnostic = field("diagnostic-code").map(|d| {
            d.split_once(';')
                .map_or(d.clone(), |(_, text)| text.trim().to_owned())
        });
        Some(Report::Bounced {
            bounce: if status.starts_with('5') {
                Bounce::Hard
            } else {
                Bounce::Soft
            },
            detail: match (&diagnostic, field("final-recipient")) {
                (Some(d), _) => d.clone(),
                (None, Some(r)) => format!("{r} failed"),
                (None, None) => "the receiving server failed it".into(),
            },
            code: Some(status).filter(|s| !s.is_empty()),
        })
    })
}

fn first(blocks: &[Vec<(String, String)>], name: &str) -> Option<String> {
    blocks
        .iter()
        .flatten()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Header-like blocks separated by blank lines: each a list of (lowercased name, value),
/// folded lines joined.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                all.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !block.is_empty() {
        all.push(block);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DSN as Postfix writes it (RFC 3464), about one of our e-mails.
    const POSTFIX_DSN: &str = "From: MAILER-DAEMON@mx.negozio.example (Mail Delivery System)\r
To: news@negozio.example\r
Subject: Undelivered Mail Returned to Sender\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary=\"B0UND\"\r
\r
--B0UND\r
Content-Type: text/plain; charset=us-ascii\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
\r
--B0UND\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.negozio.example\r
Arrival-Date: Mon,  7 Dec 2026 10:00:00 +0100 (CET)\r
\r
Final-Recipient: rfc822; nessuno@example.it\r
Original-Recipient: rfc822;nessuno@example.it\r
Action: failed\r
Status: 5.1.1\r
Remote-MTA: dns; mx.example.it\r
Diagnostic-Code: smtp; 550 5.1.1 <nessuno@example.it>: Recipient address\r
    rejected: User unknown\r
\r
--B0UND\r
Content-Type: text/rfc822-headers\r
\r
From: Negozio <news@negozio.example>\r
To: nessuno@example.it\r
Subject: Il tuo carrello\r
Message-ID: <abc123.prossimo@negozio.example>\r
\r
--B0UND--\r
";

    #[test]
    fn a_postfix_dsn_is_a_hard_bounce_of_the_message_it_names() {
        let report = read_report(POSTFIX_DSN.as_bytes()).expect("a report");
        assert_eq!(
            report.about.as_deref(),
            Some("abc123.prossimo@negozio.example")
        );
        assert_eq!(
            report.report,
            Some(Report::Bounced {
                bounce: Bounce::Hard,
                code: Some("5.1.1".into()),
                detail: "550 5.1.1 <nessuno@example.it>: Recipient address rejected: User unknown"
                    .into(),
            })
        );
    }

    #[test]
    fn a_full_mailbox_is_soft_and_a_delay_is_nothing() {
        let soft = POSTFIX_DSN.replace("Status: 5.1.1", "Status: 4.2.2");
        assert!(matches!(
            read_report(soft.as_bytes()).and_then(|r| r.report),
            Some(Report::Bounced {
                bounce: Bounce::Soft,
                ..
            })
        ));
        let delayed = POSTFIX_DSN.replace("Action: failed", "Action: delayed");
        let report = read_report(delayed.as_bytes()).expect("a report");
        assert_eq!(report.report, None);
        assert!(report.about.is_some());
    }

    #[test]
    fn an_arf_report_is_a_complaint() {
        let arf = "From: fbl@provider.example\r
To: news@negozio.example\r
Subject: FW: Il tuo carrello\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary=\"ARF\"\r
\r
--ARF\r
Content-Type: text/plain\r
\r
This is an email abuse report.\r
--ARF\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: SomeGenerator/1.0\r
Version: 1\r
\r
--ARF\r
Content-Type: message/rfc822\r
\r
From: Negozio <news@negozio.example>\r
To: anna@example.it\r
Message-ID: <k.prossimo@negozio.example>\r
Subject: Il tuo carrello\r
\r
Ciao Anna\r
--ARF--\r
";
        let report = read_report(arf.as_bytes()).expect("a report");
        assert_eq!(report.about.as_deref(), Some("k.prossimo@negozio.example"));
        assert_eq!(
            report.report,
            Some(Report::Complained {
                feedback_type: "abuse".into()
            })
        );
    }

    #[test]
    fn a_person_writing_back_is_no_report() {
        assert_eq!(
            read_report(b"From: anna@example.it\r\nSubject: Re: carrello\r\n\r\nGrazie!\r\n"),
            None
        );
        assert_eq!(read_report(b""), None);
    }
}
