//! SMS as it travels: a text goes as GSM-7 when every character is in that alphabet
//! (Italian's à è é ì ò ù are), else as UCS-2, and is split into segments that are each
//! billed; numbers are written in E.164; the sender shown depends on the recipient's
//! country (an alphanumeric id where the country allows one, a number elsewhere).

use std::collections::BTreeMap;

/// How a text is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The GSM 03.38 alphabet: 7 bits a character (2 for the extension table's).
    Gsm7,
    /// UTF-16: 16 bits a unit, 2 units for a character outside the BMP (an emoji).
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// What a text costs: its encoding and the segments it is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub count: usize,
}

/// GSM 03.38's basic alphabet, in code order (the escape at 0x1B left out).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: each costs an escape and itself.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// What one character costs in GSM-7, if it can be written there.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The segments `text` is sent as. A single message holds 160 septets or 70 UCS-2
/// units; a longer one is split into parts of 153 or 67 (the rest is the header that
/// joins them), and no character is split across two parts.
pub fn segments(text: &str) -> Segments {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    let (encoding, costs, single, part) = match gsm {
        Some(costs) => (Encoding::Gsm7, costs, 160, 153),
        None => (
            Encoding::Ucs2,
            text.chars().map(char::len_utf16).collect(),
            70,
            67,
        ),
    };
    let units: usize = costs.iter().sum();
    let count = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        let (mut count, mut filled) = (1, 0);
        for cost in costs {
            if filled + cost > part {
                count += 1;
                filled = 0;
            }
            filled += cost;
        }
        count
    };
    Segments {
        encoding,
        units,
        count,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("{0:?} is not a valid phone number")]
    NotANumber(String),
}

/// `raw` in E.164 (`+393471234567`), read by libphonenumber's rules (the `phonenumber`
/// crate, as identity reads phone identifiers): a national number (`347 123 4567`) takes
/// `default_country` (`IT`); it must be a valid number of its country.
pub fn normalize_phone(
    raw: &str,
    default_country: Option<phonenumber::country::Id>,
) -> Result<String, PhoneError> {
    match phonenumber::parse(default_country, raw) {
        Ok(number) if phonenumber::is_valid(&number) => {
            Ok(number.format().mode(phonenumber::Mode::E164).to_string())
        }
        _ => Err(PhoneError::NotANumber(raw.to_owned())),
    }
}

/// Who an SMS comes from: a number, or an alphanumeric id (`Negozio`) where the
/// recipient's country allows one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderIds {
    pub default: String,
    /// ISO country (`IT`) → sender.
    pub by_country: BTreeMap<String, String>,
}

impl SenderIds {
    /// Checks every sender: an E.164 number or 1–11 letters, digits and spaces with at
    /// least one letter (what carriers accept).
    pub fn new(default: &str, by_country: BTreeMap<String, String>) -> Result<SenderIds, String> {
        let by_country: BTreeMap<String, String> = by_country
            .into_iter()
            .map(|(country, sender)| (country.trim().to_ascii_uppercase(), sender))
            .collect();
        for (what, sender) in std::iter::once(("from", default))
            .chain(by_country.iter().map(|(c, s)| (c.as_str(), s.as_str())))
        {
            check_sender(sender).map_err(|e| format!("{what}: {e}"))?;
        }
        Ok(SenderIds {
            default: default.to_owned(),
            by_country,
        })
    }

    /// The sender for a recipient `e164`.
    pub fn for_recipient(&self, e164: &str) -> &str {
        crate::country::country_of_phone(e164)
            .and_then(|country| self.by_country.get(country.as_ref()))
            .unwrap_or(&self.default)
    }
}

fn check_sender(sender: &str) -> Result<(), String> {
    let is_number = sender
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()));
    let is_alphanumeric = (1..=11).contains(&sender.chars().count())
        && sender
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && sender.chars().any(|c| c.is_ascii_alphabetic());
    if is_number || is_alphanumeric {
        Ok(())
    } else {
        Err(format!(
            "{sender:?} is neither an E.164 number (+39…) nor 1–11 letters and digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_fits_gsm7_and_capital_accents_or_emoji_need_ucs2() {
        let s = segments("Ciao Giulia, è arrivato il tuo ordine: più sconti già attivi!");
        assert_eq!((s.encoding, s.count), (Encoding::Gsm7, 1));
        assert_eq!(segments("È arrivato").encoding, Encoding::Ucs2);
        let emoji = segments("Grazie 🎉");
        assert_eq!((emoji.encoding, emoji.units), (Encoding::Ucs2, 9));
        assert_eq!(segments("").count, 0);
    }

    #[test]
    fn segments_split_at_153_or_67_and_never_inside_a_character() {
        assert_eq!(segments(&"a".repeat(160)).count, 1);
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        assert_eq!(segments(&"a".repeat(307)).count, 3);
        // The euro costs two septets: 80 of them fill one message.
        let euros = segments(&"€".repeat(80));
        assert_eq!((euros.units, euros.count), (160, 1));
        // 306 septets would fit two parts, but the € (2) does not fit after 152: it
        // starts the second part, and the last `a` needs a third.
        let straddling = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(segments(&straddling).units, 306);
        assert_eq!(segments(&straddling).count, 3);
        assert_eq!(segments(&"È".repeat(70)).count, 1);
        assert_eq!(segments(&"È".repeat(71)).count, 2);
        assert_eq!(segments(&"È".repeat(134)).count, 2);
        assert_eq!(segments(&"È".repeat(135)).count, 3);
        // 134 units would fit two parts, but the emoji (2 units) does not fit after 66.
        let split = format!("{}🎉{}", "È".repeat(66), "È".repeat(66));
        assert_eq!(segments(&split).units, 134);
        assert_eq!(segments(&split).count, 3);
    }

    #[test]
    fn numbers_become_e164() {
        use phonenumber::country::Id;
        assert_eq!(
            normalize_phone("347 123 4567", Some(Id::IT)).as_deref(),
            Ok("+393471234567")
        );
        assert_eq!(
            normalize_phone("06 6988 1234", Some(Id::IT)).as_deref(),
            Ok("+390669881234"),
            "Italian numbers keep their 0"
        );
        assert_eq!(
            normalize_phone("0039 347.123.4567", Some(Id::DE)).as_deref(),
            Ok("+393471234567")
        );
        assert_eq!(
            normalize_phone("030 1234567", Some(Id::DE)).as_deref(),
            Ok("+49301234567")
        );
        assert_eq!(
            normalize_phone("+44 7911 123456", None).as_deref(),
            Ok("+447911123456")
        );
        assert!(normalize_phone("3471234567", None).is_err(), "no country");
        assert!(normalize_phone("chiamami", Some(Id::IT)).is_err());
        assert!(normalize_phone("+39 12", None).is_err());
    }

    #[test]
    fn the_sender_depends_on_the_recipients_country() {
        let ids = SenderIds::new(
            "+14155550100",
            BTreeMap::from([
                ("it".into(), "Negozio".into()),
                ("FR".into(), "Boutique".into()),
            ]),
        )
        .expect("valid");
        assert_eq!(ids.for_recipient("+393471234567"), "Negozio");
        assert_eq!(ids.for_recipient("+33612345678"), "Boutique");
        assert_eq!(ids.for_recipient("+4915112345678"), "+14155550100");
        assert!(SenderIds::new("Negozio Prossimo", BTreeMap::new()).is_err());
        assert!(SenderIds::new("12345", BTreeMap::new()).is_err());
        assert!(
            SenderIds::new("+39347", BTreeMap::from([("IT".into(), "x".into())]))
                .unwrap_err()
                .starts_with("from")
        );
    }
}
