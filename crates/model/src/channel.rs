use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a touchpoint happened. Offline touchpoints (a till receipt, a phone call) are
/// ordinary events with an offline channel, so the online/offline share is a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    App,
    Server,
    Store,
    CallCenter,
    Email,
    Sms,
    Social,
    Partner,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 10] = [
        Channel::Web,
        Channel::App,
        Channel::Server,
        Channel::Store,
        Channel::CallCenter,
        Channel::Email,
        Channel::Sms,
        Channel::Social,
        Channel::Partner,
        Channel::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::App => "app",
            Channel::Server => "server",
            Channel::Store => "store",
            Channel::CallCenter => "call_center",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Social => "social",
            Channel::Partner => "partner",
            Channel::Other => "other",
        }
    }

    /// True for touchpoints that happen away from a screen the company controls online.
    pub fn is_offline(self) -> bool {
        matches!(self, Channel::Store | Channel::CallCenter)
    }

    /// The channel implied by the SDK that sent a message (`context.library.name`).
    pub fn from_library(name: &str) -> Channel {
        let name = name.to_ascii_lowercase();
        const APP: [&str; 7] = [
            "ios",
            "android",
            "react-native",
            "flutter",
            "kotlin",
            "swift",
            "xamarin",
        ];
        const WEB: [&str; 3] = ["analytics.js", "analytics-next", "browser"];
        const SERVER: [&str; 9] = [
            "python", "node", "ruby", "go", "java", "php", ".net", "csharp", "rust",
        ];
        if APP.iter().any(|k| name.contains(k)) {
            Channel::App
        } else if WEB.iter().any(|k| name.contains(k)) {
            Channel::Web
        } else if SERVER.iter().any(|k| name.contains(k)) {
            Channel::Server
        } else {
            Channel::Other
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;

    /// Accepts the canonical names and the values Segment itself writes into
    /// `context.channel` (`browser`, `mobile`), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lowered = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let channel = match lowered.as_str() {
            "web" | "browser" | "website" => Channel::Web,
            "app" | "mobile" => Channel::App,
            "server" => Channel::Server,
            "store" | "pos" | "shop" => Channel::Store,
            "call_center" | "callcenter" | "call_centre" | "phone" => Channel::CallCenter,
            "email" => Channel::Email,
            "sms" => Channel::Sms,
            "social" => Channel::Social,
            "partner" => Channel::Partner,
            "other" => Channel::Other,
            _ => {
                let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
                return Err(format!(
                    "unknown channel {s:?}: expected one of {}",
                    names.join(", ")
                ));
            }
        };
        Ok(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_of_official_sdks_map_to_channels() {
        assert_eq!(Channel::from_library("analytics.js"), Channel::Web);
        assert_eq!(
            Channel::from_library("@segment/analytics-next"),
            Channel::Web
        );
        assert_eq!(Channel::from_library("analytics-ios"), Channel::App);
        assert_eq!(Channel::from_library("analytics-android"), Channel::App);
        assert_eq!(Channel::from_library("analytics-python"), Channel::Server);
        assert_eq!(
            Channel::from_library("@segment/analytics-node"),
            Channel::Server
        );
        assert_eq!(Channel::from_library("till-export"), Channel::Other);
    }

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        }
        assert_eq!("browser".parse::<Channel>(), Ok(Channel::Web));
        assert_eq!("Call Center".parse::<Channel>(), Ok(Channel::CallCenter));
        assert!(
            "fax"
                .parse::<Channel>()
                .unwrap_err()
                .contains("call_center")
        );
    }
}
