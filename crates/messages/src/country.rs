//! Countries as messages need them: the country of a phone number (libphonenumber's,
//! through the `phonenumber` crate), and the time zone of a country that has only one,
//! for a person with no `timezone` trait (chrono-tz has zones, not countries).

use chrono_tz::Tz;

/// (ISO 3166 country, its zone when the country has only one).
const COUNTRIES: &[(&str, Option<Tz>)] = &[
    ("US", None),
    ("RU", None),
    ("EG", Some(Tz::Africa__Cairo)),
    ("ZA", Some(Tz::Africa__Johannesburg)),
    ("GR", Some(Tz::Europe__Athens)),
    ("NL", Some(Tz::Europe__Amsterdam)),
    ("BE", Some(Tz::Europe__Brussels)),
    ("FR", Some(Tz::Europe__Paris)),
    ("ES", Some(Tz::Europe__Madrid)),
    ("HU", Some(Tz::Europe__Budapest)),
    ("IT", Some(Tz::Europe__Rome)),
    ("RO", Some(Tz::Europe__Bucharest)),
    ("CH", Some(Tz::Europe__Zurich)),
    ("AT", Some(Tz::Europe__Vienna)),
    ("GB", Some(Tz::Europe__London)),
    ("DK", Some(Tz::Europe__Copenhagen)),
    ("SE", Some(Tz::Europe__Stockholm)),
    ("NO", Some(Tz::Europe__Oslo)),
    ("PL", Some(Tz::Europe__Warsaw)),
    ("DE", Some(Tz::Europe__Berlin)),
    ("MX", None),
    ("AR", Some(Tz::America__Argentina__Buenos_Aires)),
    ("BR", None),
    ("CL", Some(Tz::America__Santiago)),
    ("CO", Some(Tz::America__Bogota)),
    ("AU", None),
    ("NZ", Some(Tz::Pacific__Auckland)),
    ("SG", Some(Tz::Asia__Singapore)),
    ("JP", Some(Tz::Asia__Tokyo)),
    ("KR", Some(Tz::Asia__Seoul)),
    ("CN", Some(Tz::Asia__Shanghai)),
    ("TR", Some(Tz::Europe__Istanbul)),
    ("IN", Some(Tz::Asia__Kolkata)),
    ("MA", Some(Tz::Africa__Casablanca)),
    ("TN", Some(Tz::Africa__Tunis)),
    ("PT", Some(Tz::Europe__Lisbon)),
    ("LU", Some(Tz::Europe__Luxembourg)),
    ("IE", Some(Tz::Europe__Dublin)),
    ("AL", Some(Tz::Europe__Tirane)),
    ("MT", Some(Tz::Europe__Malta)),
    ("CY", Some(Tz::Asia__Nicosia)),
    ("FI", Some(Tz::Europe__Helsinki)),
    ("BG", Some(Tz::Europe__Sofia)),
    ("LT", Some(Tz::Europe__Vilnius)),
    ("LV", Some(Tz::Europe__Riga)),
    ("EE", Some(Tz::Europe__Tallinn)),
    ("MC", Some(Tz::Europe__Monaco)),
    ("SM", Some(Tz::Europe__San_Marino)),
    ("UA", Some(Tz::Europe__Kiev)),
    ("RS", Some(Tz::Europe__Belgrade)),
    ("HR", Some(Tz::Europe__Zagreb)),
    ("SI", Some(Tz::Europe__Ljubljana)),
    ("CZ", Some(Tz::Europe__Prague)),
    ("SK", Some(Tz::Europe__Bratislava)),
    ("LI", Some(Tz::Europe__Vaduz)),
    ("AE", Some(Tz::Asia__Dubai)),
    ("IL", Some(Tz::Asia__Jerusalem)),
];

/// The country of a number in E.164 (`+393471234567` → `IT`).
pub fn country_of_phone(e164: &str) -> Option<phonenumber::country::Id> {
    phonenumber::parse(None, e164).ok()?.country().id()
}

/// The time zone of `country` (ISO 3166 alpha-2, any case) when it has only one.
pub fn zone_of_country(country: &str) -> Option<Tz> {
    let country = country.trim();
    COUNTRIES
        .iter()
        .find(|(iso, _)| iso.eq_ignore_ascii_case(country))
        .and_then(|(_, zone)| *zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_names_its_country() {
        use phonenumber::country::Id;
        assert_eq!(country_of_phone("+393471234567"), Some(Id::IT));
        assert_eq!(country_of_phone("+351912345678"), Some(Id::PT));
        assert_eq!(country_of_phone("+4915112345678"), Some(Id::DE));
        assert_eq!(country_of_phone("3471234567"), None, "not E.164");
    }

    #[test]
    fn a_country_with_one_zone_gives_it() {
        assert_eq!(zone_of_country("it"), Some(Tz::Europe__Rome));
        assert_eq!(zone_of_country(" GB "), Some(Tz::Europe__London));
        assert_eq!(zone_of_country("US"), None, "several zones");
        assert_eq!(zone_of_country("Italia"), None);
    }
}
